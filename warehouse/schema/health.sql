-- Health: the scores computed from core (assets.health.assets.health_scores), one row per package
-- and per grid, replaced as a whole on every refresh (a replay with another health.toml recomputes
-- them all without a crawl). Keys are declared on "key:" comment lines, enforced by the health asset checks.

-- key: package_id
CREATE TABLE IF NOT EXISTS health.package_scores (
    package_id BIGINT NOT NULL,
    score INTEGER,
    weight INTEGER,
    weight_breakdown VARCHAR,
    last_released TIMESTAMPTZ,
    health_score DOUBLE,
    health_uncapped DOUBLE,
    activity DOUBLE,
    activity_max DOUBLE,
    releases DOUBLE,
    releases_max DOUBLE,
    popularity DOUBLE,
    popularity_max DOUBLE,
    community DOUBLE,
    community_max DOUBLE,
    currency DOUBLE,
    currency_max DOUBLE,
    security DOUBLE,
    security_max DOUBLE,
    cap DOUBLE,
    cap_reason VARCHAR,
    explanation VARCHAR,
    health_version VARCHAR,
    computed_at TIMESTAMPTZ
);

-- key: grid_id
CREATE TABLE IF NOT EXISTS health.grid_scores (
    grid_id BIGINT NOT NULL,
    weight INTEGER
);
