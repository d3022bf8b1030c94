//! Geography: node locations and great-circle distance.

use serde::{Deserialize, Serialize};

use crate::DnsError;

/// Mean Earth radius (IUGG), km. The haversine formula on a sphere of this
/// radius is within 0.5 % of the ellipsoidal distance everywhere, far finer
/// than anything latency can tell apart.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Where a node is: latitude and longitude in decimal degrees (WGS 84).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// Degrees north, −90 to 90.
    pub lat: f64,
    /// Degrees east, −180 to 180.
    pub lon: f64,
}

impl Location {
    /// A checked location: finite, latitude within ±90, longitude within ±180.
    pub fn new(lat: f64, lon: f64) -> Result<Location, DnsError> {
        let location = Location { lat, lon };
        if location.is_valid() {
            Ok(location)
        } else {
            Err(DnsError::InvalidLocation { lat, lon })
        }
    }

    /// True when the coordinates are finite and in range.
    pub fn is_valid(&self) -> bool {
        self.lat.is_finite()
            && self.lon.is_finite()
            && (-90.0..=90.0).contains(&self.lat)
            && (-180.0..=180.0).contains(&self.lon)
    }

    /// Great-circle distance to `other` in km (haversine formula).
    pub fn km_to(&self, other: &Location) -> f64 {
        haversine_km(*self, *other)
    }
}

/// Great-circle distance between two points in km, by the haversine
/// formula, which stays accurate for small distances (unlike the spherical
/// law of cosines) and is clamped so that rounding near antipodes cannot
/// produce NaN.
pub fn haversine_km(a: Location, b: Location) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let d_lat = lat2 - lat1;
    let d_lon = (b.lon - a.lon).to_radians();
    let h = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.clamp(0.0, 1.0).sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(lat: f64, lon: f64) -> Location {
        Location::new(lat, lon).expect("valid test location")
    }

    fn assert_km(a: Location, b: Location, expected: f64, tolerance: f64) {
        let got = haversine_km(a, b);
        assert!((got - expected).abs() <= tolerance, "expected {expected} km, got {got}");
        // Symmetric.
        assert!((haversine_km(b, a) - got).abs() < 1e-9);
    }

    #[test]
    fn known_city_pairs() {
        let london = loc(51.5074, -0.1278);
        let paris = loc(48.8566, 2.3522);
        let new_york = loc(40.7128, -74.0060);
        let los_angeles = loc(34.0522, -118.2437);
        let berlin = loc(52.5200, 13.4050);
        let munich = loc(48.1351, 11.5820);
        let sydney = loc(-33.8688, 151.2093);
        let tokyo = loc(35.6762, 139.6503);
        // Published great-circle distances (km), within 1 %.
        assert_km(london, paris, 343.5, 3.5);
        assert_km(new_york, los_angeles, 3936.0, 40.0);
        assert_km(berlin, munich, 504.0, 5.0);
        assert_km(london, sydney, 16_994.0, 170.0);
        assert_km(tokyo, sydney, 7_823.0, 78.0);
        assert_km(london, new_york, 5_570.0, 56.0);
    }

    #[test]
    fn degenerate_cases() {
        let p = loc(12.5, -45.25);
        assert_eq!(haversine_km(p, p), 0.0);
        let half_circumference = std::f64::consts::PI * EARTH_RADIUS_KM;
        assert_km(loc(0.0, 0.0), loc(0.0, 180.0), half_circumference, 1e-6);
        assert_km(loc(90.0, 0.0), loc(-90.0, 0.0), half_circumference, 1e-6);
        // Nearly antipodal: no NaN from rounding.
        let d = haversine_km(loc(10.0, 20.0), loc(-10.0, -160.0 + 1e-12));
        assert!(d.is_finite() && d <= half_circumference + 1e-6);
        // Across the date line is short.
        assert_km(loc(0.0, 179.5), loc(0.0, -179.5), 111.2, 0.2);
        // One degree of latitude is about 111.2 km.
        assert_km(loc(45.0, 7.0), loc(46.0, 7.0), 111.2, 0.2);
    }

    #[test]
    fn rejects_invalid_coordinates() {
        for (lat, lon) in [
            (91.0, 0.0),
            (-90.5, 0.0),
            (0.0, 180.5),
            (f64::NAN, 0.0),
            (0.0, f64::INFINITY),
        ] {
            assert!(Location::new(lat, lon).is_err(), "{lat},{lon}");
        }
        assert!(Location::new(-90.0, 180.0).is_ok());
    }
}
