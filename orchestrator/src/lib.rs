//! grove orchestration tiers (root, cluster, worker) and the user CLI. Arrives with a later issue.
