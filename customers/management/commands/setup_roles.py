from django.core.management.base import BaseCommand

from customers.roles import roles_ensure


class Command(BaseCommand):
    help = "Create or refresh the Marketing, Store manager and Clerk groups and their permissions."

    def handle(self, *args, **options):
        for name, group in roles_ensure().items():
            self.stdout.write(f"{name}: {group.permissions.count()} permission(s)")
