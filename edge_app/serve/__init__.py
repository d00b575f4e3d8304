"""``pneumoscan serve``: the clinic's web page, served by the device itself, for a tablet or browser.

The same screening, the same audit log and the same words as the command line, behind pages a
nurse can use (``pip install 'pneumoscan[serve]'``: Flask for the routes and templates, waitress
as the production WSGI server; both pure Python, so they install on a Raspberry Pi as they do here).

- :mod:`edge_app.serve.cli`      the ``serve`` command: options, the refusal to listen beyond this
  machine without a password, ``--set-password``
- :mod:`edge_app.serve.server`   builds everything and runs waitress
- :mod:`edge_app.serve.app`      the Flask app factory: login, CSRF, security headers, errors
- :mod:`edge_app.serve.pages`    Screen, Result (with its print view), Worklist, About
- :mod:`edge_app.serve.api`      ``POST /api/screen``, ``GET /api/worklist``, ``GET /api/session``
- :mod:`edge_app.serve.context`  the settings and service every route reaches, request helpers
- :mod:`edge_app.serve.service`  screening an upload exactly once into the audit log; reading it back
- :mod:`edge_app.serve.worklist` a day's rows, the filters a nurse picks, identifiers hidden
- :mod:`edge_app.serve.storage`  uploads kept under ``--data`` by content, and their pictures
- :mod:`edge_app.serve.auth`     the password (salted scrypt), sessions and the login throttle

Templates and static files live in this package (package data): nothing is fetched from anywhere.
"""
