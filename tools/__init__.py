"""The course's maintenance tools: the notebook runner, memory figures, the site and the offline rehearsal.

Run them from the repository's root (``python -m tools.offline_rehearsal``, ``python tools/build_site.py``).
"""
