import os

# Playwright's sync API leaves an event loop running in the main thread; Django must be told before
# the test database is created, or every ORM call raises SynchronousOnlyOperation.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
os.environ.setdefault("TANDEM_TESTING", "1")
