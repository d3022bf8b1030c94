//! From a parsed name to the instances to answer with: look the service
//! up, settle which app's service it is, apply the policy.
//!
//! This is the resolver's one call per grove query. It is pure given the
//! directory and the round-robin table, and allocation-free on the
//! `closest`, `rr`, `all` and `instance-N` paths (the `explain` and
//! `Ambiguous` paths allocate their lists).

use std::net::IpAddr;

use crate::config::PolicyConfig;
use crate::directory::Directory;
use crate::name::QueryName;
use crate::policy::{apply, Miss, PolicyContext, Selection};
use crate::rr::RrTable;
use crate::scope::{scope, AppScope, AskerContext, Scoped};

/// Who asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asker<'a> {
    /// The querier's source address (round-robin state is kept per asker).
    pub address: IpAddr,
    /// The asking workload's app and namespace as the caller knows them (for
    /// instance from the source address). When it gives either, it is used
    /// as is; otherwise the search-domain suffix of the query name is.
    pub context: AskerContext<'a>,
}

impl Asker<'_> {
    /// An asker known only by its address.
    pub fn from_address(address: IpAddr) -> Asker<'static> {
        Asker {
            address,
            context: AskerContext::default(),
        }
    }
}

/// What to answer a grove query with. Each variant says its DNS meaning;
/// the resolver maps them to the wire in one place.
#[derive(Clone, Debug)]
pub enum SelectOutcome {
    /// Answer with these instances (A/AAAA/SRV) or, for `explain`, TXT.
    Selected(Selection),
    /// No such service (in that app/namespace): NXDOMAIN.
    NoSuchService,
    /// `instance-N` where N does not exist: NXDOMAIN.
    NoSuchInstance {
        /// The number asked for.
        number: u32,
    },
    /// SRV form for a port no candidate exposes: NXDOMAIN.
    NoSuchPort,
    /// Every candidate is unhealthy and serving them is off: NODATA (the
    /// name exists; negatively cached for the SOA minimum only).
    NoHealthyInstance,
    /// A short name whose service exists in several apps, and the asker's
    /// context does not decide: say so (TXT listing the candidates, extended
    /// error), never guess.
    Ambiguous {
        /// Every (app, namespace) with the service, sorted.
        candidates: Vec<AppScope>,
    },
}

/// Selects the instances answering `query` for `asker`.
pub fn select<D: Directory + ?Sized>(
    query: &QueryName,
    asker: &Asker<'_>,
    directory: &D,
    rr: &RrTable,
    config: &PolicyConfig,
) -> SelectOutcome {
    let all = directory.service(query.path.service.as_str());
    let context = if asker.context != AskerContext::default() {
        asker.context
    } else {
        AskerContext {
            app: query.context.as_ref().map(|c| c.app.as_str()),
            namespace: query.context.as_ref().map(|c| c.namespace.as_str()),
        }
    };
    let candidates = match scope(&all, &query.path, context) {
        Scoped::Found(candidates) => candidates,
        Scoped::NoSuchService => return SelectOutcome::NoSuchService,
        Scoped::Ambiguous(candidates) => return SelectOutcome::Ambiguous { candidates },
    };
    let cx = PolicyContext {
        oracle: directory,
        rr,
        asker: asker.address,
        config,
    };
    match apply(query.policy, candidates, query.port, query.explain, &cx) {
        Ok(selection) => SelectOutcome::Selected(selection),
        Err(Miss::NoSuchService) => SelectOutcome::NoSuchService,
        Err(Miss::NoSuchInstance(number)) => SelectOutcome::NoSuchInstance { number },
        Err(Miss::NoSuchPort) => SelectOutcome::NoSuchPort,
        Err(Miss::NoHealthyInstance) => SelectOutcome::NoHealthyInstance,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::name::{parse_name, NameOutcome};
    use crate::test_support::{instance, Fake};
    use crate::Zone;

    fn directory() -> Fake {
        Fake::default()
            .with(vec![
                instance("web", "prod", 0, "far"),
                instance("web", "prod", 1, "near"),
                instance("shop", "prod", 0, "near"),
                instance("cam", "edge", 0, "near"),
            ])
            .at("far", Some(80.0), Some(4000.0))
            .at("near", Some(3.0), Some(20.0))
    }

    fn run(name: &str, asker: Asker<'_>) -> SelectOutcome {
        let NameOutcome::Query(query) = parse_name(name, &Zone::default()) else {
            panic!("{name} is not a query");
        };
        select(
            &query,
            &asker,
            &directory(),
            &RrTable::new(64, 0),
            &PolicyConfig::default(),
        )
    }

    fn chosen(outcome: SelectOutcome) -> String {
        match outcome {
            SelectOutcome::Selected(s) => s
                .chosen()
                .map(|i| format!("{}/{}/{}", i.app, i.namespace, i.number))
                .collect::<Vec<_>>()
                .join(" "),
            other => format!("{other:?}"),
        }
    }

    fn anonymous() -> Asker<'static> {
        Asker::from_address(IpAddr::V4(Ipv4Addr::new(10, 18, 0, 5)))
    }

    #[test]
    fn qualified_names() {
        assert_eq!(chosen(run("closest.ms2.web.prod.grove", anonymous())), "web/prod/1");
        assert_eq!(chosen(run("all.ms2.web.grove", anonymous())), "web/prod/0 web/prod/1");
        assert_eq!(chosen(run("instance-0.ms2.cam.grove", anonymous())), "cam/edge/0");
        assert!(matches!(
            run("closest.nope.grove", anonymous()),
            SelectOutcome::NoSuchService
        ));
        assert!(matches!(
            run("closest.ms2.web.dev.grove", anonymous()),
            SelectOutcome::NoSuchService
        ));
        assert!(matches!(
            run("instance-5.ms2.web.grove", anonymous()),
            SelectOutcome::NoSuchInstance { number: 5 }
        ));
        assert!(matches!(
            run("_grpc._tcp.closest.ms2.web.grove", anonymous()),
            SelectOutcome::NoSuchPort
        ));
    }

    #[test]
    fn short_names_use_the_search_suffix() {
        // Sent through `search web.prod.svc.grove`: the asker is web/prod.
        assert_eq!(chosen(run("closest.ms2.web.prod.svc.grove", anonymous())), "web/prod/1");
        assert_eq!(chosen(run("closest.ms2.cam.edge.svc.grove", anonymous())), "cam/edge/0");
        // An asker of another app in prod: two candidates there, no guess.
        match run("closest.ms2.api.prod.svc.grove", anonymous()) {
            SelectOutcome::Ambiguous { candidates } => {
                let apps: Vec<&str> = candidates.iter().map(|c| c.app.as_str()).collect();
                assert_eq!(apps, ["cam", "shop", "web"]);
            }
            other => panic!("{other:?}"),
        }
        // Sent through `search grove`: no context at all.
        assert!(matches!(
            run("closest.ms2.grove", anonymous()),
            SelectOutcome::Ambiguous { .. }
        ));
    }

    #[test]
    fn caller_context_wins_over_the_suffix() {
        let asker = Asker {
            address: IpAddr::V4(Ipv4Addr::new(10, 18, 0, 5)),
            context: AskerContext {
                app: Some("shop"),
                namespace: Some("prod"),
            },
        };
        assert_eq!(chosen(run("closest.ms2.grove", asker)), "shop/prod/0");
        assert_eq!(chosen(run("closest.ms2.web.prod.svc.grove", asker)), "shop/prod/0");
        // An explicit app in the name beats any context.
        assert_eq!(chosen(run("closest.ms2.cam.grove", asker)), "cam/edge/0");
    }

    #[test]
    fn explain_carries_the_reasoning() {
        let SelectOutcome::Selected(sel) = run("explain.closest.ms2.web.grove", anonymous()) else {
            panic!("selected");
        };
        let explanation = sel.explanation.expect("explain");
        assert_eq!(explanation.ranking.len(), 2);
        assert_eq!(sel.candidates[explanation.ranking[0].index].node.as_str(), "near");
    }
}
