//! Latency from geography: the model the testbed uses to turn site
//! coordinates into one-way delays.
//!
//! Light in fibre travels at about 2/3 c ≈ 200 km/ms, and real routes are
//! roughly twice as long as the great circle between two points, so one
//! millisecond of one-way delay buys about 100 km of distance. On top comes
//! a fixed 0.5 ms for the access links and switching at both ends.

use std::time::Duration;

/// Mean Earth radius (IUGG), km.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Effective propagation speed along real routes: fibre at ~2/3 c
/// (≈ 200 km/ms) divided by a route inflation of ≈ 2.
pub const KM_PER_MS: f64 = 100.0;

/// Fixed one-way cost of access links and switching.
pub const BASE_ONE_WAY: Duration = Duration::from_micros(500);

/// A place a node stands, in degrees (WGS84, north and east positive).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Site {
    pub name: String,
    pub lat: f64,
    pub lon: f64,
}

impl Site {
    /// A named site at `lat`, `lon` degrees.
    pub fn new(name: impl Into<String>, lat: f64, lon: f64) -> Self {
        Site {
            name: name.into(),
            lat,
            lon,
        }
    }
}

/// Great-circle distance between two sites in km (haversine formula).
pub fn great_circle_km(a: &Site, b: &Site) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// Modelled one-way delay between two sites:
/// `0.5 ms + great_circle_km / 100 km-per-ms`. Symmetric; 0.5 ms for a
/// site and itself.
pub fn geo_one_way_delay(a: &Site, b: &Site) -> Duration {
    BASE_ONE_WAY + Duration::from_secs_f64(great_circle_km(a, b) / KM_PER_MS / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> Site {
        Site::new("berlin", 52.5200, 13.4050)
    }
    fn munich() -> Site {
        Site::new("munich", 48.1351, 11.5820)
    }
    fn new_york() -> Site {
        Site::new("new-york", 40.7128, -74.0060)
    }

    #[test]
    fn known_distances() {
        let bm = great_circle_km(&berlin(), &munich());
        assert!((bm - 504.0).abs() < 5.0, "berlin–munich {bm} km");
        let bn = great_circle_km(&berlin(), &new_york());
        assert!((bn - 6385.0).abs() < 20.0, "berlin–new york {bn} km");
    }

    #[test]
    fn distance_is_symmetric_and_zero_on_self() {
        let (a, b) = (berlin(), new_york());
        assert!((great_circle_km(&a, &b) - great_circle_km(&b, &a)).abs() < 1e-9);
        assert_eq!(great_circle_km(&a, &a), 0.0);
    }

    #[test]
    fn antipodes_are_half_the_circumference() {
        let d = great_circle_km(&Site::new("n", 90.0, 0.0), &Site::new("s", -90.0, 0.0));
        assert!((d - std::f64::consts::PI * EARTH_RADIUS_KM).abs() < 1e-6);
    }

    #[test]
    fn delay_model() {
        assert_eq!(geo_one_way_delay(&berlin(), &berlin()), BASE_ONE_WAY);
        let d = geo_one_way_delay(&berlin(), &munich());
        // 0.5 ms + 504 km / 100 km/ms ≈ 5.54 ms
        assert!((d.as_secs_f64() * 1000.0 - 5.54).abs() < 0.1, "{d:?}");
        let t = geo_one_way_delay(&berlin(), &new_york());
        // transatlantic: ≈ 64 ms one way, ≈ 128 ms RTT — in line with real paths
        assert!((t.as_secs_f64() * 1000.0 - 64.35).abs() < 0.5, "{t:?}");
    }
}
