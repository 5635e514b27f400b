"""Domain packages: energy, mobility, water and environment, each a plugin that declares
its templates and computes its KPIs (see :mod:`citytwin.domains.base`)."""
