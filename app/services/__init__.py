"""All rules live here: permissions, validation beyond shape, persistence, and
what happened (events.py).

Services take the acting user (`app.actor.Actor`) and plain values, raise
`app.errors.AppError` subclasses, and record an event in the transaction that
makes it true (`app.aftercommit.record`); the event is delivered once that
commits. They never see a request, and import nothing from the doors
(`app.api`, `app.realtime`, `app.cli`).
"""
