-- Core tables: the catalogue joined with what the crawl learnt. Built by assets.core.transform.
-- Keys are declared with "-- key:" lines (DuckDB primary-key indexes make bulk loads ~10x slower);
-- the core asset checks enforce them.

-- key: id
CREATE TABLE IF NOT EXISTS core.categories (
    id BIGINT NOT NULL,
    title VARCHAR,
    slug VARCHAR,
    description VARCHAR,
    title_plural VARCHAR,
    show_pypi BOOLEAN,
    created TIMESTAMPTZ,
    modified TIMESTAMPTZ
);

-- key: id
CREATE TABLE IF NOT EXISTS core.grids (
    id BIGINT NOT NULL,
    title VARCHAR,
    slug VARCHAR,
    description VARCHAR,
    is_locked BOOLEAN,
    header BOOLEAN,
    created TIMESTAMPTZ,
    modified TIMESTAMPTZ
);

-- key: grid_id, package_id
CREATE TABLE IF NOT EXISTS core.grid_packages (
    grid_id BIGINT NOT NULL,
    package_id BIGINT NOT NULL,
    position INTEGER
);

-- key: id
CREATE TABLE IF NOT EXISTS core.packages (
    id BIGINT NOT NULL,
    title VARCHAR,
    slug VARCHAR,
    category_id BIGINT,
    repo_url VARCHAR,
    pypi_url VARCHAR,
    documentation_url VARCHAR,
    created TIMESTAMPTZ,
    modified TIMESTAMPTZ,
    repo_host VARCHAR,
    repo_owner VARCHAR,
    repo_name VARCHAR,
    repo_key VARCHAR,
    pypi_name VARCHAR,
    repo_url_problem VARCHAR,
    repo_watchers BIGINT,
    repo_forks BIGINT,
    repo_description VARCHAR,
    last_updated TIMESTAMPTZ,
    last_fetched TIMESTAMPTZ,
    pypi_version VARCHAR,
    is_archived BOOLEAN,
    is_stale BOOLEAN,
    canonical_repo VARCHAR,
    pypi_status VARCHAR,
    pypi_status_reason VARCHAR,
    pypi_requires_python VARCHAR,
    pypi_classifiers VARCHAR[],
    pypi_inactive BOOLEAN,
    python_versions VARCHAR[],
    django_versions VARCHAR[],
    is_deprecated BOOLEAN,
    usage BIGINT,
    catalogue_deprecated BOOLEAN,
    pypi_vulnerabilities INTEGER,
    pypi_downloads BIGINT
);

-- key: repo_key
CREATE TABLE IF NOT EXISTS core.repositories (
    repo_key VARCHAR NOT NULL,
    host VARCHAR,
    owner VARCHAR,
    name VARCHAR,
    stars BIGINT,
    forks BIGINT,
    watchers BIGINT,
    open_issues BIGINT,
    description VARCHAR,
    homepage VARCHAR,
    archived BOOLEAN,
    is_fork BOOLEAN,
    default_branch VARCHAR,
    pushed_at TIMESTAMPTZ,
    last_commit_at TIMESTAMPTZ,
    latest_release VARCHAR,
    license VARCHAR,
    topics VARCHAR[],
    canonical_repo VARCHAR,
    fetched_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ
);

-- key: package_id, week_index
CREATE TABLE IF NOT EXISTS core.commit_weeks (
    package_id BIGINT NOT NULL,
    week_index SMALLINT NOT NULL,
    week_start DATE,
    commits INTEGER
);

-- key: package_id, position
CREATE TABLE IF NOT EXISTS core.participants (
    package_id BIGINT NOT NULL,
    position INTEGER NOT NULL,
    login VARCHAR,
    contributions BIGINT,
    is_bot BOOLEAN
);

-- key: package_id, version
CREATE TABLE IF NOT EXISTS core.releases (
    package_id BIGINT NOT NULL,
    version VARCHAR NOT NULL,
    upload_time TIMESTAMPTZ,
    yanked BOOLEAN,
    requires_python VARCHAR,
    is_prerelease BOOLEAN
);

-- key: package_id, day
CREATE TABLE IF NOT EXISTS core.downloads_daily (
    package_id BIGINT NOT NULL,
    day DATE NOT NULL,
    downloads BIGINT
);

-- key: package_id, request_key
CREATE TABLE IF NOT EXISTS core.crawl_errors (
    package_id BIGINT NOT NULL,
    source VARCHAR,
    request_key VARCHAR NOT NULL,
    kind VARCHAR,
    http_status INTEGER,
    message VARCHAR,
    first_seen TIMESTAMPTZ,
    last_seen TIMESTAMPTZ,
    attempts INTEGER,
    severity VARCHAR
);

-- key: source, endpoint
CREATE TABLE IF NOT EXISTS core.endpoint_errors (
    source VARCHAR NOT NULL,
    endpoint VARCHAR NOT NULL,
    request_key VARCHAR,
    kind VARCHAR,
    http_status INTEGER,
    message VARCHAR,
    requests INTEGER,
    seen_at TIMESTAMPTZ
);
