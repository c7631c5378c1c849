"""Marshmallow schemas: the one definition of every payload, by role.

- `base`: the schema every one extends, which writes each field's key in camelCase;
- `fields`: the field types (ids, trimmed text, tokens, times) and their cleaning;
- `inputs`: what REST bodies and socket payloads may hold, and `load` for the sockets;
- `outputs`: how models are shaped into the JSON both doors send.

Callers import from the module of the role they need.
"""
