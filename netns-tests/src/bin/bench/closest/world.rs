//! Where the nodes of `bench closest` stand, which of them run `ms2`, and
//! the true RTT between any two of them (the testbed's own delay model).

use netns_tests::{geo_one_way_delay, Site, TestbedBuilder};

/// (short name, city, lat, lon). Europe-heavy, plus two far ones. Frankfurt
/// comes first: node 0, the admission authority, stands there.
const CITIES: [(&str, &str, f64, f64); 13] = [
    ("fra", "frankfurt", 50.11, 8.68),
    ("muc", "munich", 48.14, 11.58),
    ("par", "paris", 48.86, 2.35),
    ("lon", "london", 51.51, -0.13),
    ("mad", "madrid", 40.42, -3.70),
    ("mil", "milan", 45.46, 9.19),
    ("waw", "warsaw", 52.23, 21.01),
    ("sto", "stockholm", 59.33, 18.07),
    ("hel", "helsinki", 60.17, 24.94),
    ("vie", "vienna", 48.21, 16.37),
    ("ams", "amsterdam", 52.37, 4.90),
    ("nyc", "new-york", 40.71, -74.01),
    ("sin", "singapore", 1.35, 103.82),
];

/// Cities whose first node (never the authority) runs an `ms2` instance.
const MS2_CITIES: [&str; 8] = ["muc", "par", "lon", "mad", "waw", "hel", "nyc", "sin"];

/// Spread of node coordinates around their city centre, degrees (±).
const JITTER_DEG: f64 = 0.05;

/// One node: its name, city and exact site.
#[derive(Debug, Clone)]
pub struct Place {
    pub name: String,
    pub city: &'static str,
    pub site: Site,
}

/// Every node's place, in testbed order.
#[derive(Debug, Clone)]
pub struct World {
    pub places: Vec<Place>,
}

impl World {
    /// `n` nodes dealt round-robin over the cities, each moved by up to
    /// ±0.05° so that nodes in one city are not all equally far apart.
    pub fn new(n: usize, rng: &mut Rng) -> World {
        let mut count = [0usize; CITIES.len()];
        let places = (0..n)
            .map(|i| {
                let c = i % CITIES.len();
                let (short, city, lat, lon) = CITIES[c];
                let name = format!("{short}{}", count[c]);
                count[c] += 1;
                let lat = lat + rng.symmetric(JITTER_DEG);
                let lon = lon + rng.symmetric(JITTER_DEG);
                Place {
                    name,
                    city,
                    site: Site::new(city, lat, lon),
                }
            })
            .collect();
        World { places }
    }

    /// The testbed builder with every node at its site.
    pub fn builder(&self) -> TestbedBuilder {
        self.places
            .iter()
            .fold(netns_tests::Testbed::builder(), |b, p| {
                b.with_node_at(&p.name, p.site.clone())
            })
    }

    /// Number of distinct cities in use.
    pub fn cities(&self) -> usize {
        let mut cities: Vec<&str> = self.places.iter().map(|p| p.city).collect();
        cities.sort_unstable();
        cities.dedup();
        cities.len()
    }

    /// Indices of the nodes that host `ms2`: the first node of each of
    /// [`MS2_CITIES`] present.
    pub fn ms2_hosts(&self) -> Vec<usize> {
        MS2_CITIES
            .iter()
            .filter_map(|short| {
                self.places
                    .iter()
                    .position(|p| p.name == format!("{short}0"))
            })
            .filter(|&i| i != 0)
            .collect()
    }

    /// Nodes in the same city as `i` (including `i`).
    pub fn city_of(&self, i: usize) -> Vec<usize> {
        (0..self.places.len())
            .filter(|&j| self.places[j].city == self.places[i].city)
            .collect()
    }

    /// True RTT between nodes `a` and `b` in ms: twice the modelled one-way
    /// delay; 0 for a node and itself.
    pub fn rtt_ms(&self, a: usize, b: usize) -> f64 {
        if a == b {
            return 0.0;
        }
        2.0 * geo_one_way_delay(&self.places[a].site, &self.places[b].site).as_secs_f64() * 1000.0
    }

    /// Node index by name.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.places.iter().position(|p| p.name == name)
    }
}

/// xorshift64*: reproducible choices without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [-spread, spread).
    pub fn symmetric(&mut self, spread: f64) -> f64 {
        (self.unit() * 2.0 - 1.0) * spread
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
