"""All rules live here: permissions, validation beyond shape, persistence, then notify.

Services take the acting user (`app.auth.Actor`) and plain values, raise
`app.errors.AppError` subclasses, commit, and only then ask
`app.realtime.notify` to tell the rooms. They never see a request.
"""
