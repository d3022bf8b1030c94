//! Which app's service a name means: explicit when the name says, the
//! asker's own when it does not, and never a guess.
//!
//! `closest.ms2` names the service `ms2` of no particular app. When only one
//! (app, namespace) has a service `ms2`, that is it. When several do, the
//! asker's context decides, in this order:
//!
//! 1. the asker's own app in the asker's own namespace (a sibling service);
//! 2. the only candidate in the asker's namespace (namespaces isolate, as
//!    in Kubernetes: prod does not reach into staging by accident);
//! 3. when the asker's namespace is unknown, the only candidate in the
//!    asker's app;
//!
//! and otherwise the answer is [`Scoped::Ambiguous`] with the candidates, for
//! the resolver to say so (TXT / extended error), never a pick. A name that
//! gives the app but not the namespace (`closest.ms2.web`) goes through the
//! same steps among the namespaces of that app.

use crate::directory::Instances;
use crate::name::ServicePath;

/// Who asks: the app and namespace of the asking workload, when known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AskerContext<'a> {
    /// The asker's app.
    pub app: Option<&'a str>,
    /// The asker's namespace.
    pub namespace: Option<&'a str>,
}

/// One (app, namespace) that has the service.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AppScope {
    /// The app.
    pub app: String,
    /// Its namespace.
    pub namespace: String,
}

/// The outcome of scoping a service path.
#[derive(Clone, Debug)]
pub enum Scoped {
    /// The instances of one (app, namespace), non-empty.
    Found(Instances),
    /// No app (in the given namespace) has this service.
    NoSuchService,
    /// Several do and the asker's context does not decide; sorted.
    Ambiguous(Vec<AppScope>),
}

/// Narrows `all` (every instance of `path.service`) to one (app,
/// namespace). Allocates only for the `Ambiguous` list.
pub fn scope(all: &Instances, path: &ServicePath, asker: AskerContext<'_>) -> Scoped {
    let app = path.app.as_ref().map(|l| l.as_str());
    let namespace = path.namespace.as_ref().map(|l| l.as_str());
    let within = all.scoped(app, None);
    // `scoped` narrows by namespace only together with an app.
    let admits = |g: &Instances| namespace.is_none_or(|ns| g[0].namespace == ns);

    let mut groups = within.groups().filter(|g| admits(g));
    let Some(first) = groups.next() else {
        return Scoped::NoSuchService;
    };
    if groups.next().is_none() {
        return Scoped::Found(first);
    }

    let unique = |pred: &dyn Fn(&Instances) -> bool| {
        let mut hits = within.groups().filter(|g| admits(g) && pred(g));
        match (hits.next(), hits.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    };
    let own_app = |g: &Instances| asker.app.is_some_and(|a| g[0].app == a);
    let own_namespace = |g: &Instances| asker.namespace.is_some_and(|n| g[0].namespace == n);
    let decided = unique(&|g| own_app(g) && own_namespace(g))
        .or_else(|| unique(&own_namespace))
        .or_else(|| {
            if asker.namespace.is_none() {
                unique(&own_app)
            } else {
                None
            }
        });
    match decided {
        Some(group) => Scoped::Found(group),
        None => Scoped::Ambiguous(
            within
                .groups()
                .filter(|g| admits(g))
                .map(|g| AppScope {
                    app: g[0].app.to_string(),
                    namespace: g[0].namespace.to_string(),
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::label::Label;
    use crate::test_support::instance;

    fn all() -> Instances {
        Instances::new(vec![
            instance("web", "prod", 0, "n1"),
            instance("web", "prod", 1, "n2"),
            instance("shop", "prod", 0, "n3"),
            instance("web", "staging", 0, "n4"),
            instance("solo", "lab", 0, "n5"),
        ])
    }

    fn path(app: Option<&str>, namespace: Option<&str>) -> ServicePath {
        let label = |s: &str| Label::parse(s).expect("label");
        ServicePath {
            service: label("ms2"),
            app: app.map(label),
            namespace: namespace.map(label),
        }
    }

    fn asker<'a>(app: Option<&'a str>, namespace: Option<&'a str>) -> AskerContext<'a> {
        AskerContext { app, namespace }
    }

    /// "app/namespace" of a found scope, or what else came out.
    fn found(s: Scoped) -> String {
        match s {
            Scoped::Found(g) => {
                assert!(g.iter().all(|i| i.same_scope(&g[0])));
                format!("{}/{}", g[0].app, g[0].namespace)
            }
            Scoped::NoSuchService => "none".into(),
            Scoped::Ambiguous(c) => {
                let names: Vec<String> = c.iter().map(|s| format!("{}/{}", s.app, s.namespace)).collect();
                format!("ambiguous {}", names.join(" "))
            }
        }
    }

    #[test]
    fn explicit_paths() {
        let all = all();
        assert_eq!(
            found(scope(&all, &path(Some("web"), Some("prod")), asker(None, None))),
            "web/prod"
        );
        assert_eq!(
            found(scope(&all, &path(Some("shop"), None), asker(None, None))),
            "shop/prod"
        );
        assert_eq!(
            found(scope(&all, &path(Some("web"), Some("dev")), asker(None, None))),
            "none"
        );
        assert_eq!(found(scope(&all, &path(Some("nope"), None), asker(None, None))), "none");
        assert_eq!(
            found(scope(&Instances::empty(), &path(None, None), asker(None, None))),
            "none"
        );
    }

    #[test]
    fn a_single_owner_needs_no_context() {
        let only = Instances::new(vec![instance("solo", "lab", 0, "n5"), instance("solo", "lab", 1, "n6")]);
        assert_eq!(
            found(scope(&only, &path(None, None), asker(Some("x"), Some("y")))),
            "solo/lab"
        );
    }

    #[test]
    fn ambiguous_short_names_prefer_the_askers_own_app() {
        let all = all();
        let p = path(None, None);
        // Own app and namespace.
        assert_eq!(
            found(scope(&all, &p, asker(Some("web"), Some("staging")))),
            "web/staging"
        );
        assert_eq!(found(scope(&all, &p, asker(Some("shop"), Some("prod")))), "shop/prod");
        // Own namespace, if only one candidate lives there.
        assert_eq!(found(scope(&all, &p, asker(Some("cam"), Some("lab")))), "solo/lab");
        assert_eq!(
            found(scope(&all, &p, asker(Some("cam"), Some("staging")))),
            "web/staging"
        );
        // Two candidates in the asker's namespace, neither its app: no guess.
        assert_eq!(
            found(scope(&all, &p, asker(Some("cam"), Some("prod")))),
            "ambiguous shop/prod solo/lab web/prod web/staging"
        );
        // Own app with unknown namespace: only if the app has it once.
        assert_eq!(found(scope(&all, &p, asker(Some("shop"), None))), "shop/prod");
        assert!(found(scope(&all, &p, asker(Some("web"), None))).starts_with("ambiguous"));
        // No context at all.
        assert!(found(scope(&all, &p, asker(None, None))).starts_with("ambiguous"));
    }

    #[test]
    fn app_without_namespace_uses_the_askers_namespace() {
        let all = all();
        let p = path(Some("web"), None);
        assert_eq!(
            found(scope(&all, &p, asker(Some("cam"), Some("staging")))),
            "web/staging"
        );
        assert_eq!(found(scope(&all, &p, asker(Some("cam"), Some("prod")))), "web/prod");
        assert_eq!(
            found(scope(&all, &p, asker(Some("cam"), Some("lab")))),
            "ambiguous web/prod web/staging"
        );
        assert_eq!(
            found(scope(&all, &p, asker(None, None))),
            "ambiguous web/prod web/staging"
        );
    }
}
