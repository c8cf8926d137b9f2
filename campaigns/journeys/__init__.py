"""Journeys: publishing versions of steps, finding trigger events, and the minutely tick that steps
every due enrolment set-based (see ``campaigns.models.journeys`` for the step grammar)."""
