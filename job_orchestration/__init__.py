"""The modules of job-orchestration 0.0.7 that users' code imports, on top of ``orchestration``.

``job-orchestration`` is the distribution name 0.0.7 had, so ``pip install -U`` brings its
users here; their ``Tasks.py`` files, config scripts and commands keep working through this
package. New code imports ``orchestration`` instead. Importing this emits no warning.
"""
