"""The application layer: runs resolved from configs, trained, saved, compared and loaded.

``config`` (RunConfig and its TOML), ``recipes`` (per-model defaults), ``plan`` (a run's
settings resolved once), ``run`` (training and scoring splits), ``rundir`` (the only code
that knows the run directory), ``trained`` (a run loaded for use), ``compare``, ``plots``.
"""
