-- Solution packages installed on this platform (see docs/packages.md): one row per domain,
-- with the package's version, its KPI settings and KPI switches, and the whole document
-- as it was imported. Times are microseconds since the epoch, as everywhere in SQLite.

CREATE TABLE domain_packages (
    domain TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    settings TEXT NOT NULL,
    kpis TEXT NOT NULL,
    installed_at INTEGER NOT NULL,
    document TEXT NOT NULL
);
