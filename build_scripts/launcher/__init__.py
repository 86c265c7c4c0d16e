"""The single-file launcher: a small frozen program that carries the one-folder app inside it.

PyInstaller's own onefile mode inflates and writes every file of the app (~490 MB, QtWebEngine
is most of it) into a fresh temp folder at EVERY start: ~2.5 s before Python runs. Instead, the
single file is this launcher (a few MB that PyInstaller unpacks) plus the one-folder app as one
entry PyInstaller never unpacks (``payload.py``). The launcher unpacks that app ONCE into a
per-user cache folder named after the build (``appcache.py``) and then runs it from there, so
every start after the first costs what a one-folder start costs (docs/adr, "single-file start").

Only the standard library: the launcher must stay small, and it never imports the app.
"""
