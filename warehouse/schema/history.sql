-- History: one row per package per refresh, appended idempotently (a refresh id is replaced, never
-- duplicated). Written by the history asset (assets.marts).

-- key: refresh_id, package_id
CREATE TABLE IF NOT EXISTS history.package_metrics (
    refresh_id VARCHAR NOT NULL,
    snapshot_at TIMESTAMPTZ NOT NULL,
    package_id BIGINT NOT NULL,
    stars BIGINT,
    forks BIGINT,
    watchers BIGINT,
    open_issues BIGINT,
    commits_52w BIGINT,
    contributors INTEGER,
    last_commit TIMESTAMPTZ,
    latest_release VARCHAR,
    latest_release_at TIMESTAMPTZ,
    archived BOOLEAN,
    health_score DOUBLE,
    deprecated BOOLEAN,
    pypi_status VARCHAR,
    pypi_downloads BIGINT
);

-- key: refresh_id
CREATE TABLE IF NOT EXISTS history.refreshes (
    refresh_id VARCHAR NOT NULL,
    snapshot_at TIMESTAMPTZ NOT NULL,
    packages BIGINT
);
