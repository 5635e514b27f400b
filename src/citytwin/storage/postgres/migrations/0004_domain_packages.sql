-- Solution packages installed on this platform (see docs/packages.md): one row per domain,
-- with the package's version, its KPI settings and KPI switches, and the whole document
-- as it was imported.

CREATE TABLE domain_packages (
    domain text PRIMARY KEY,
    version text NOT NULL,
    settings jsonb NOT NULL,
    kpis jsonb NOT NULL,
    installed_at timestamptz NOT NULL,
    document jsonb NOT NULL
);
