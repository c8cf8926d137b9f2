"""Journeys: publishing versions of steps, finding trigger events, the minutely tick that steps every due
enrolment set-based, and the marketer's admin (editor, diagram, dry run, templates). See
``campaigns.models.journeys`` for the step grammar."""
