from __future__ import annotations

from django.db import models


class SegmentQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)

    def personas(self):
        return self.filter(is_persona=True, is_active=True)
