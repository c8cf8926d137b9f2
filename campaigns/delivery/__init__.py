"""The send pipeline: launch writes deliveries set-based, chunks claim and send them, a sweeper re-drives.

``launch``   the audience becomes ``Delivery`` rows in one INSERT … SELECT (rows already there are skipped).
``sending``  one chunk: claim by id range, re-check in bulk, render once per variant, send, record.
``sweeper``  re-drives due rows whose task was lost, resolves rows stuck in sending, finishes campaigns.
``outbox``   where messages land when no provider is configured (the embedded demo).
"""
