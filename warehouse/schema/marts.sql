-- Marts: analytics views over core, health and history (recomputed on every query, nothing to load).
-- Each view's key is declared on a "key:" comment line above it (documented in warehouse/README.md).

-- Per package: popularity and activity now, with human-friendly names.
-- key: package_id
CREATE OR REPLACE VIEW marts.package_activity AS
WITH weeks AS (
    SELECT package_id,
           sum(commits) AS commits_52w,
           sum(commits) FILTER (WHERE week_index >= 40) AS commits_12w
    FROM core.commit_weeks GROUP BY package_id
), people AS (
    SELECT package_id,
           count(*) AS contributors,
           count(*) FILTER (WHERE NOT is_bot) AS human_contributors
    FROM core.participants GROUP BY package_id
)
SELECT p.id AS package_id,
       p.slug,
       p.title,
       p.category_id,
       p.repo_host,
       p.repo_watchers AS stars,
       p.repo_forks AS forks,
       coalesce(w.commits_52w, 0)::BIGINT AS commits_52w,
       coalesce(w.commits_12w, 0)::BIGINT AS commits_12w,
       coalesce(c.contributors, 0)::BIGINT AS contributors,
       coalesce(c.human_contributors, 0)::BIGINT AS human_contributors,
       p.last_updated AS last_commit,
       date_diff('day', p.last_updated, now())::BIGINT AS days_since_last_commit,
       p.pypi_version,
       p.is_archived,
       p.is_stale,
       p.pypi_status,
       p.is_deprecated
FROM core.packages p
LEFT JOIN weeks w ON w.package_id = p.id
LEFT JOIN people c ON c.package_id = p.id;

-- Per grid: its packages ranked by stars (ties by 52-week commits, then slug).
-- key: grid_id, package_id
CREATE OR REPLACE VIEW marts.grid_leaderboard AS
SELECT g.id AS grid_id,
       g.slug AS grid_slug,
       g.title AS grid_title,
       a.package_id,
       a.slug AS package_slug,
       a.stars,
       a.commits_52w,
       a.last_commit,
       a.is_archived,
       row_number() OVER (PARTITION BY g.id ORDER BY a.stars DESC, a.commits_52w DESC, a.slug)::BIGINT
           AS rank
FROM core.grid_packages gp
JOIN core.grids g ON g.id = gp.grid_id
JOIN marts.package_activity a ON a.package_id = gp.package_id;

-- Popular (>= 100 stars), not archived or deprecated (a retired project is not "stale"), and no
-- commit for a year (or never seen one).
-- key: package_id
CREATE OR REPLACE VIEW marts.stale_popular_packages AS
SELECT package_id, slug, stars, last_commit, days_since_last_commit, commits_52w, is_stale
FROM marts.package_activity
WHERE stars >= 100
  AND NOT is_deprecated
  AND (last_commit IS NULL OR last_commit < now() - INTERVAL 365 DAY);

-- Archived in the latest refresh, not archived in the one before it.
-- key: package_id
CREATE OR REPLACE VIEW marts.newly_archived AS
WITH ranked AS (
    SELECT refresh_id, snapshot_at, dense_rank() OVER (ORDER BY snapshot_at DESC, refresh_id DESC) AS n
    FROM history.refreshes
), latest AS (
    SELECT m.* FROM history.package_metrics m JOIN ranked r USING (refresh_id) WHERE r.n = 1
), previous AS (
    SELECT m.* FROM history.package_metrics m JOIN ranked r USING (refresh_id) WHERE r.n = 2
)
SELECT l.package_id, p.slug, l.refresh_id, l.snapshot_at AS archived_seen_at, l.stars
FROM latest l
JOIN previous v ON v.package_id = l.package_id
JOIN core.packages p ON p.id = l.package_id
WHERE l.archived AND NOT coalesce(v.archived, FALSE);

-- Per package on PyPI: how often it releases (final, non-yanked releases with an upload time).
-- key: package_id
CREATE OR REPLACE VIEW marts.release_cadence AS
WITH r AS (
    SELECT package_id, upload_time,
           lag(upload_time) OVER (PARTITION BY package_id ORDER BY upload_time) AS previous_upload
    FROM core.releases
    WHERE NOT is_prerelease AND NOT yanked AND upload_time IS NOT NULL
)
SELECT r.package_id,
       p.slug,
       count(*)::BIGINT AS releases,
       min(r.upload_time) AS first_release,
       max(r.upload_time) AS latest_release,
       (count(*) FILTER (WHERE r.upload_time >= now() - INTERVAL 365 DAY))::BIGINT AS releases_365d,
       median(date_diff('day', r.previous_upload, r.upload_time))::DOUBLE AS median_days_between
FROM r JOIN core.packages p ON p.id = r.package_id
GROUP BY r.package_id, p.slug;

-- Per package: the Pulse health score now, its components and why, and its change against the
-- newest history snapshot at least 30 / 90 days older than the score (NULL when history has none).
-- key: package_id
CREATE OR REPLACE VIEW marts.package_health AS
WITH past AS (
    SELECT m.package_id,
           arg_max(m.health_score, m.snapshot_at)
               FILTER (WHERE m.snapshot_at <= s.computed_at - INTERVAL 30 DAY) AS score_30d,
           arg_max(m.health_score, m.snapshot_at)
               FILTER (WHERE m.snapshot_at <= s.computed_at - INTERVAL 90 DAY) AS score_90d
    FROM history.package_metrics m
    JOIN health.package_scores s ON s.package_id = m.package_id
    WHERE m.health_score IS NOT NULL
    GROUP BY m.package_id
)
SELECT s.package_id,
       p.slug,
       p.title,
       s.health_score,
       s.activity,
       s.releases,
       s.popularity,
       s.community,
       s.currency,
       s.security,
       s.cap,
       s.cap_reason,
       s.explanation,
       s.health_version,
       round(s.health_score - past.score_30d, 1)::DOUBLE AS change_30d,
       round(s.health_score - past.score_90d, 1)::DOUBLE AS change_90d
FROM health.package_scores s
JOIN core.packages p ON p.id = s.package_id
LEFT JOIN past ON past.package_id = s.package_id;

-- Per grid and scored member: its health rank (1 = healthiest, equal scores share the best rank) and
-- percentile (share of the grid's other scored members with a lower score, 100 for a grid of one).
-- The same numbers as assets.marts.grids.grid_health (tested equal).
-- key: grid_id, package_id
CREATE OR REPLACE VIEW marts.grid_package_health AS
WITH members AS (
    SELECT DISTINCT gp.grid_id, gp.package_id, s.health_score
    FROM core.grid_packages gp
    JOIN health.package_scores s ON s.package_id = gp.package_id
    WHERE s.health_score IS NOT NULL
), ranked AS (
    SELECT *,
           rank() OVER (PARTITION BY grid_id ORDER BY health_score DESC) AS rank_desc,
           rank() OVER (PARTITION BY grid_id ORDER BY health_score) - 1 AS lower,
           count(*) OVER (PARTITION BY grid_id) AS members
    FROM members
)
SELECT grid_id,
       package_id,
       health_score,
       rank_desc::INTEGER AS rank,
       (CASE WHEN members > 1 THEN round(lower * 100.0 / (members - 1), 1) ELSE 100.0 END)::DOUBLE AS percentile
FROM ranked;

-- Per grid: how healthy its scored members are, and the healthiest one (ties: the lowest id).
-- key: grid_id
CREATE OR REPLACE VIEW marts.grid_health AS
WITH members AS (
    SELECT DISTINCT gp.grid_id, gp.package_id, s.health_score
    FROM core.grid_packages gp
    JOIN health.package_scores s ON s.package_id = gp.package_id
    WHERE s.health_score IS NOT NULL
), agg AS (
    SELECT grid_id,
           count(*) AS packages,
           median(health_score) AS median_health,
           min(health_score) AS min_health,
           max(health_score) AS max_health,
           first(package_id ORDER BY health_score DESC, package_id) AS top_package_id
    FROM members GROUP BY grid_id
)
SELECT g.id AS grid_id,
       g.slug AS grid_slug,
       coalesce(a.packages, 0)::BIGINT AS packages,
       a.median_health::DOUBLE AS median_health,
       a.min_health::DOUBLE AS min_health,
       a.max_health::DOUBLE AS max_health,
       a.top_package_id,
       p.slug AS top_package_slug
FROM core.grids g
LEFT JOIN agg a ON a.grid_id = g.id
LEFT JOIN core.packages p ON p.id = a.top_package_id;
