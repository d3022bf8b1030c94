//! Viola–Jones / Lienhart Haar-cascade detector that evaluates OpenCV's trained cascade XML files.
//!
//! Supported: the `opencv-cascade-classifier` format with stageType BOOST and featureType HAAR,
//! stumps and trees, upright and 45° tilted features. The old `opencv-haar-classifier` format and
//! LBP / categorical cascades are rejected with [`CascadeError::Format`].
//!
//! Multi-scale search scales the *features and window*, never the image (as OpenCV 1.x/2.x's
//! `cvHaarDetectObjects` did): per scale each rectangle is rounded once, rectangle 0's weight is
//! re-derived so rounding keeps the feature's response to a flat patch, and offsets into the
//! integral images are precomputed. The grid follows OpenCV 4's `detectMultiScale`: a step of 2
//! scaled pixels below scale 2, else 1 (i.e. `2·s` or `s` image pixels at scale `s`). Like OpenCV 4's
//! `HaarEvaluator::setWindow`, flat windows (grey-level std dev ≤ 10) are rejected outright.
//! Candidates are merged like `cv::groupRectangles` with eps = 0.2.
use roxmltree::{Document, Node};
use std::path::{Path, PathBuf};

/// A trained cascade loaded from an OpenCV XML file.
pub struct Cascade {
    width: u32,
    height: u32,
    features: Vec<Feature>,
    nodes: Vec<TreeNode>,
    stages: Vec<Stage>,
    /// Some feature is tilted (so the tilted integral is needed); every weak classifier is a stump.
    has_tilted: bool,
    stumps: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CascadeError {
    #[error("cannot read cascade file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cascade is not well-formed XML: {0}")]
    Xml(String),
    #[error("unsupported or invalid cascade: {0}")]
    Format(String),
}

#[derive(Debug, Clone, Copy)]
pub struct DetectParams {
    /// Window growth per scale step; must be > 1 (otherwise `detect` returns nothing).
    pub scale_factor: f32,
    /// Keep groups with more than this many raw hits; 0 returns the raw hits ungrouped.
    pub min_neighbors: u32,
    /// Minimum window side in pixels (0 = the cascade's own window).
    pub min_size: u32,
    /// Maximum window side in pixels (0 = no limit).
    pub max_size: u32,
}

impl Default for DetectParams {
    fn default() -> Self { DetectParams { scale_factor: 1.1, min_neighbors: 3, min_size: 0, max_size: 0 } }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detection {
    pub x: u32, pub y: u32, pub width: u32, pub height: u32,
    /// Number of raw hits merged into this detection.
    pub neighbors: u32,
}

struct HaarRect { x: i64, y: i64, w: i64, h: i64, weight: f64 }
struct Feature { rects: Vec<HaarRect>, tilted: bool }
/// Children > 0 are node indices within the tree; children <= 0 are leaves, with values in `leaf`.
struct TreeNode { feature: usize, threshold: f32, left: i32, right: i32, leaf: [f32; 2] }
/// `weak` holds the root node of each weak classifier.
struct Stage { threshold: f64, weak: Vec<usize> }
/// A tree node with its feature baked in for one scale: offsets into `Integrals::buf`, relative to
/// the window origin, of up to 3 rects (an unused rect has weight 0).
struct ScaledNode { ofs: [[u32; 4]; 3], weight: [f32; 3], threshold: f32, left: i32, right: i32, leaf: [f32; 2], three: bool }
/// `buf` holds the sum integral image, then (if the cascade needs it) the tilted one.
struct Integrals { stride: usize, buf: Vec<u32>, sq: Vec<u64> }

fn bad(msg: String) -> CascadeError { CascadeError::Format(msg) }
fn at(n: Node) -> String {
    format!("<{}> at line {}", n.tag_name().name(), n.document().text_pos_at(n.range().start).row)
}
fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Result<Node<'a, 'i>, CascadeError> {
    n.children().find(|c| c.has_tag_name(name)).ok_or_else(|| bad(format!("{} has no <{name}>", at(n))))
}
fn items<'a, 'i>(n: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> { n.children().filter(|c| c.is_element()) }
fn content(n: Node) -> String { n.children().filter_map(|c| c.text()).collect() }
fn nums(n: Node) -> Result<Vec<f64>, CascadeError> {
    content(n).split_whitespace().map(|t| {
        t.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| bad(format!("{}: '{t}' is not a number", at(n))))
    }).collect()
}
fn num(n: Node, name: &str) -> Result<f64, CascadeError> {
    let c = child(n, name)?;
    match nums(c)?[..] { [v] => Ok(v), _ => Err(bad(format!("{} must hold exactly one number", at(c)))) }
}
fn int(v: f64, lo: i64, hi: i64, n: Node, what: &str) -> Result<i64, CascadeError> {
    if v.fract() == 0.0 && v >= lo as f64 && v <= hi as f64 { return Ok(v as i64); }
    Err(bad(format!("{}: {what} {v} is not an integer in {lo}..={hi}", at(n))))
}

impl Cascade {
    pub fn load(path: &Path) -> Result<Cascade, CascadeError> {
        let text = std::fs::read_to_string(path).map_err(|source| CascadeError::Io { path: path.to_path_buf(), source })?;
        let named = |m: String| format!("{}: {m}", path.display());
        Cascade::from_xml(&text).map_err(|e| match e {
            CascadeError::Xml(m) => CascadeError::Xml(named(m)),
            CascadeError::Format(m) => CascadeError::Format(named(m)),
            io => io,
        })
    }

    pub fn from_xml(text: &str) -> Result<Cascade, CascadeError> {
        let doc = Document::parse(text).map_err(|e| CascadeError::Xml(e.to_string()))?;
        let root = doc.root_element();
        if !root.has_tag_name("opencv_storage") {
            return Err(bad(format!("root element is {}, expected <opencv_storage>", at(root))));
        }
        let c = items(root).next().ok_or_else(|| bad("<opencv_storage> holds no cascade element".into()))?;
        if c.attribute("type_id") == Some("opencv-haar-classifier") {
            return Err(bad(format!("{} uses the old opencv-haar-classifier format, which is not supported; \
                convert it to the opencv-cascade-classifier format with OpenCV first", at(c))));
        }
        for (tag, want) in [("stageType", "BOOST"), ("featureType", "HAAR")] {
            let got = content(child(c, tag)?).trim().to_string();
            if got != want { return Err(bad(format!("{tag} is '{got}', only {want} is supported"))); }
        }
        if let Some(p) = c.children().find(|n| n.has_tag_name("featureParams")).filter(|&p| num(p, "maxCatCount").is_ok_and(|v| v != 0.0)) {
            return Err(bad(format!("{}: categorical features (maxCatCount > 0) are not supported", at(p))));
        }
        let width = int(num(c, "width")?, 3, 4096, c, "window width")?;
        let height = int(num(c, "height")?, 3, 4096, c, "window height")?;
        let mut features = Vec::new();
        for f in items(child(c, "features")?) {
            let tilted = match f.children().find(|n| n.has_tag_name("tilted")) {
                Some(t) => int(nums(t)?.first().copied().unwrap_or(-1.0), 0, 1, t, "tilted flag")? == 1,
                None => false,
            };
            let mut rects = Vec::new();
            for r in items(child(f, "rects")?) {
                let (v, lim) = (nums(r)?, 1 << 16);
                if v.len() != 5 { return Err(bad(format!("{}: a rect needs 'x y w h weight'", at(r)))); }
                let (x, y) = (int(v[0], 0, lim, r, "x")?, int(v[1], 0, lim, r, "y")?);
                let (w, h) = (int(v[2], 1, lim, r, "width")?, int(v[3], 1, lim, r, "height")?);
                let inside = if tilted { x - h >= 0 && x + w <= width && y + w + h <= height } else { x + w <= width && y + h <= height };
                if !inside { return Err(bad(format!("{}: rect {x} {y} {w} {h} leaves the {width}x{height} window", at(r)))); }
                rects.push(HaarRect { x, y, w, h, weight: v[4] });
            }
            if rects.is_empty() || rects.len() > 3 { return Err(bad(format!("{}: a feature needs 1 to 3 rects", at(f)))); }
            features.push(Feature { rects, tilted });
        }
        let (mut nodes, mut stages) = (Vec::new(), Vec::new());
        for (si, st) in items(child(c, "stages")?).enumerate() {
            let mut weak = Vec::new();
            for (wi, wk) in items(child(st, "weakClassifiers")?).enumerate() {
                let (inn, lv) = (child(wk, "internalNodes")?, nums(child(wk, "leafValues")?)?);
                let v = nums(inn)?;
                let (nn, nl) = (v.len() / 4, lv.len() as i64);
                if v.is_empty() || v.len() % 4 != 0 || lv.len() < 2 {
                    return Err(bad(format!("stage {si}, weak classifier {wi}, {}: need groups of 'left right featureIdx threshold' \
                        and at least 2 leafValues, got {} and {} numbers", at(inn), v.len(), lv.len())));
                }
                weak.push(nodes.len());
                for (k, q) in v.chunks(4).enumerate() {
                    let kid = |x: f64| -> Result<i32, CascadeError> {
                        let i = int(x, 1 - nl, nn as i64 - 1, inn, "child index")?;
                        if i > 0 && i <= k as i64 { return Err(bad(format!("{}: node {k} points back to node {i}", at(inn)))); }
                        Ok(i as i32)
                    };
                    let (left, right) = (kid(q[0])?, kid(q[1])?);
                    let feature = int(q[2], 0, features.len() as i64 - 1, inn, "featureIdx")? as usize;
                    let leaf = [left, right].map(|c| if c <= 0 { lv[c.unsigned_abs() as usize] as f32 } else { 0.0 });
                    nodes.push(TreeNode { feature, threshold: q[3] as f32, left, right, leaf });
                }
            }
            if weak.is_empty() { return Err(bad(format!("stage {si} ({}) has no weak classifiers", at(st)))); }
            stages.push(Stage { threshold: num(st, "stageThreshold")? - 1e-5, weak });
        }
        if stages.is_empty() { return Err(bad("the cascade has no stages".into())); }
        if let Some(n) = num(c, "stageNum").ok().filter(|&n| n != stages.len() as f64) {
            return Err(bad(format!("stageNum says {n} but {} stages are present", stages.len())));
        }
        let has_tilted = features.iter().any(|f| f.tilted);
        let stumps = nodes.len() == stages.iter().map(|s| s.weak.len()).sum::<usize>();
        Ok(Cascade { width: width as u32, height: height as u32, features, nodes, stages, has_tilted, stumps })
    }

    /// The trained window size (width, height).
    pub fn window(&self) -> (u32, u32) { (self.width, self.height) }

    pub fn stages(&self) -> usize { self.stages.len() }

    /// Grayscale image, row-major, width*height bytes. Never panics (empty or tiny images give no detections; a length mismatch gives none).
    pub fn detect(&self, gray: &[u8], width: u32, height: u32, params: &DetectParams) -> Vec<Detection> {
        let (w, h) = (width as usize, height as usize);
        let sf = params.scale_factor as f64;
        if w.checked_mul(h) != Some(gray.len()) || (w + 1).saturating_mul(h + 1) > (u32::MAX / 2) as usize || width < self.width || height < self.height || !(sf > 1.0 && sf.is_finite()) {
            return Vec::new();
        }
        let ii = integrals(gray, w, h, self.has_tilted);
        let (min, max) = (params.min_size as i64, if params.max_size == 0 { i64::MAX } else { params.max_size as i64 });
        let mut cands = Vec::new();
        let mut f = 1.0f64;
        loop {
            let (ww, wh) = ((self.width as f64 * f).round() as i64, (self.height as f64 * f).round() as i64);
            if ww > w as i64 || wh > h as i64 || ww > max || wh > max { break; }
            if ww >= min && wh >= min { self.scan(&ii, w as i64, h as i64, f, &mut cands); }
            f *= sf;
        }
        group(&cands, params.min_neighbors)
    }

    /// Evaluates every window position at scale `f`, pushing hits as `[x, y, w, h]`.
    fn scan(&self, ii: &Integrals, w: i64, h: i64, f: f64, out: &mut Vec<[i64; 4]>) {
        let (s, tofs) = (ii.stride, ii.stride * (h as usize + 1));
        let rnd = |v: i64| (v as f64 * f).round() as i64;
        let (mut max_x, mut max_y) = (0i64, 0i64);
        let mut offsets = |x: i64, y: i64, w: i64, h: i64, tilted: bool| -> [u32; 4] {
            let c = if tilted { [(x, y), (x - h, y + h), (x + w, y + w), (x + w - h, y + w + h)] }
                    else { [(x, y), (x + w, y), (x, y + h), (x + w, y + h)] };
            c.map(|(px, py)| {
                (max_x, max_y) = (max_x.max(px), max_y.max(py));
                (py.max(0) as usize * s + px.max(0) as usize + if tilted { tofs } else { 0 }) as u32
            })
        };
        let (nw, nh) = (rnd(self.width as i64 - 2), rnd(self.height as i64 - 2));
        let norm = offsets(rnd(1), rnd(1), nw, nh, false).map(|o| o as usize);
        let area = (nw * nh) as f64;
        let mut feats = Vec::with_capacity(self.features.len());
        for ft in &self.features {
            let (mut ofs, mut weight) = ([[0u32; 4]; 3], [0f32; 3]);
            let (mut flat, mut rest) = (0.0, 0.0);
            for (k, hr) in ft.rects.iter().enumerate() {
                let (sw, sh) = (rnd(hr.w), rnd(hr.h));
                (ofs[k], weight[k]) = (offsets(rnd(hr.x), rnd(hr.y), sw, sh, ft.tilted), hr.weight as f32);
                flat += hr.weight * (hr.w * hr.h) as f64 * f * f;
                if k > 0 { rest += hr.weight * (sw * sh) as f64; }
            }
            if ft.rects.len() > 1 {
                weight[0] = ((flat - rest) / (rnd(ft.rects[0].w) * rnd(ft.rects[0].h)) as f64) as f32;
            }
            feats.push((ofs, weight));
        }
        let nodes: Vec<ScaledNode> = self.nodes.iter().map(|n| {
            let (ofs, weight) = feats[n.feature];
            ScaledNode { ofs, weight, threshold: n.threshold, left: n.left, right: n.right, leaf: n.leaf, three: weight[2] != 0.0 }
        }).collect();
        let step = if f > 2.0 { f } else { 2.0 * f };
        let (win_w, win_h) = (rnd(self.width as i64), rnd(self.height as i64));
        let t = &ii.buf[..];
        let value = |n: &ScaledNode, win: &[u32]| -> f32 {
            let r = |o: &[u32; 4]| win[o[0] as usize].wrapping_sub(win[o[1] as usize]).wrapping_sub(win[o[2] as usize]).wrapping_add(win[o[3] as usize]) as f32;
            let v = n.weight[0] * r(&n.ofs[0]) + n.weight[1] * r(&n.ofs[1]);
            if n.three { v + n.weight[2] * r(&n.ofs[2]) } else { v }
        };
        for y in (0..).map(|i| (i as f64 * step).round() as i64).take_while(|&y| y + max_y <= h) {
            for x in (0..).map(|i| (i as f64 * step).round() as i64).take_while(|&x| x + max_x <= w) {
                let b = y as usize * s + x as usize;
                let sum = t[b + norm[0]].wrapping_sub(t[b + norm[1]]).wrapping_sub(t[b + norm[2]]).wrapping_add(t[b + norm[3]]) as f64;
                let q = &ii.sq;
                let sq = q[b + norm[0]].wrapping_sub(q[b + norm[1]]).wrapping_sub(q[b + norm[2]]).wrapping_add(q[b + norm[3]]);
                let nf = area * sq as f64 - sum * sum;
                if nf <= 0.0 || area / nf.sqrt() >= 0.1 { continue; }
                let nf = nf.sqrt() as f32;
                let win = &t[b..];
                let passed = self.stages.iter().all(|st| {
                    let mut acc = 0.0f64;
                    if self.stumps {
                        let ns = &nodes[st.weak[0]..st.weak[0] + st.weak.len()];
                        let acc: f32 = ns.iter().map(|n| n.leaf[usize::from(value(n, win) >= n.threshold * nf)]).sum();
                        return acc as f64 >= st.threshold;
                    }
                    for &n0 in &st.weak {
                        let mut n = &nodes[n0];
                        loop {
                            let go_left = value(n, win) < n.threshold * nf;
                            let next = if go_left { n.left } else { n.right };
                            if next <= 0 {
                                acc += n.leaf[usize::from(!go_left)] as f64;
                                break;
                            }
                            n = &nodes[n0 + next as usize];
                        }
                    }
                    acc >= st.threshold
                });
                if passed { out.push([x, y, win_w, win_h]); }
            }
        }
    }
}

/// Sum, squared-sum and (optionally) 45° tilted integral images, each (w+1)x(h+1).
/// tilt(X, Y) = Σ image(x, y) over y < Y, |x - X + 1| <= Y - y - 1 (OpenCV's definition).
fn integrals(g: &[u8], w: usize, h: usize, tilted: bool) -> Integrals {
    let s = w + 1;
    let n = s * (h + 1);
    let (mut buf, mut sq) = (vec![0u32; if tilted { 2 * n } else { n }], vec![0u64; n]);
    let (sum, tilt) = buf.split_at_mut(n);
    // Diagonal prefix sums of the previous and current rows: up-left (dl) and up-right (dr).
    let (mut pdl, mut pdr, mut cdl, mut cdr) = (vec![0u32; w], vec![0u32; w], vec![0u32; w], vec![0u32; w]);
    for (y, row) in g.chunks_exact(w).enumerate() {
        let (mut rs, mut rq) = (0u32, 0u64);
        for (x, &p) in row.iter().enumerate() {
            rs = rs.wrapping_add(p as u32);
            rq = rq.wrapping_add(p as u64 * p as u64);
            sum[(y + 1) * s + x + 1] = sum[y * s + x + 1].wrapping_add(rs);
            sq[(y + 1) * s + x + 1] = sq[y * s + x + 1].wrapping_add(rq);
        }
        if !tilted { continue; }
        for (x, &p) in row.iter().enumerate() {
            cdl[x] = (p as u32).wrapping_add(if x > 0 { pdl[x - 1] } else { 0 });
            cdr[x] = (p as u32).wrapping_add(if x + 1 < w { pdr[x + 1] } else { 0 });
        }
        tilt[(y + 1) * s] = tilt[y * s].wrapping_add(pdr[0]);
        for x in 1..=w {
            tilt[(y + 1) * s + x] = tilt[y * s + x].wrapping_add(cdl[x - 1]).wrapping_add(cdr[x - 1]).wrapping_sub(row[x - 1] as u32);
        }
        std::mem::swap(&mut pdl, &mut cdl);
        std::mem::swap(&mut pdr, &mut cdr);
    }
    Integrals { stride: s, buf, sq }
}

/// cv::groupRectangles: partition by similarity, average each class, keep classes with more than
/// `threshold` members, and drop ones lying inside a stronger one.
fn group(c: &[[i64; 4]], threshold: u32) -> Vec<Detection> {
    let det = |r: [i64; 4], n: usize| Detection { x: r[0] as u32, y: r[1] as u32, width: r[2] as u32, height: r[3] as u32, neighbors: n as u32 };
    if threshold == 0 { return c.iter().map(|&r| det(r, 1)).collect(); }
    let similar = |a: &[i64; 4], b: &[i64; 4]| {
        let d = 0.2 * (a[2].min(b[2]) + a[3].min(b[3])) as f64 * 0.5;
        [a[0] - b[0], a[1] - b[1], a[0] + a[2] - b[0] - b[2], a[1] + a[3] - b[1] - b[3]].iter().all(|v| v.abs() as f64 <= d)
    };
    let mut parent: Vec<usize> = (0..c.len()).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize { while p[i] != i { p[i] = p[p[i]]; i = p[i]; } i }
    for (i, j) in (0..c.len()).flat_map(|i| (0..i).map(move |j| (i, j))) {
        if similar(&c[i], &c[j]) { let (a, b) = (find(&mut parent, i), find(&mut parent, j)); parent[a] = b; }
    }
    let (mut label, mut acc): (Vec<usize>, Vec<([i64; 4], usize)>) = (vec![usize::MAX; c.len()], Vec::new());
    for (i, r) in c.iter().enumerate() {
        let root = find(&mut parent, i);
        if label[root] == usize::MAX { label[root] = acc.len(); acc.push(([0; 4], 0)); }
        let e = &mut acc[label[root]];
        (0..4).for_each(|k| e.0[k] += r[k]);
        e.1 += 1;
    }
    let avg: Vec<([i64; 4], usize)> = acc.iter().map(|(s, n)| (s.map(|v| (v as f64 / *n as f64).round() as i64), *n)).collect();
    let t = threshold as usize;
    avg.iter().enumerate().filter(|&(i, &(r1, n1))| {
        n1 > t && !avg.iter().enumerate().any(|(j, &(r2, n2))| {
            let (dx, dy) = ((r2[2] as f64 * 0.2).round() as i64, (r2[3] as f64 * 0.2).round() as i64);
            j != i && n2 > t && r1[0] >= r2[0] - dx && r1[1] >= r2[1] - dy && r1[0] + r1[2] <= r2[0] + r2[2] + dx
                && r1[1] + r1[3] <= r2[1] + r2[3] + dy && (n2 > n1.max(3) || n1 < 3)
        })
    }).map(|(_, &(r, n))| det(r, n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    const DIR: &str = "/usr/share/opencv4/haarcascades";
    const PHOTO: &str = "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rustface-0.1.7/test.png";

    fn cascade(name: &str) -> Cascade {
        Cascade::load(Path::new(&format!("{DIR}/haarcascade_{name}.xml"))).expect("cascade loads")
    }
    fn photo() -> (Vec<u8>, u32, u32) {
        let img = image::open(PHOTO).expect("test photo").to_rgb8();
        let g = img.pixels().map(|p| ((299 * p[0] as u32 + 587 * p[1] as u32 + 114 * p[2] as u32 + 500) / 1000) as u8);
        (g.collect(), img.width(), img.height())
    }

    #[test]
    fn loads_the_shipped_cascades() {
        for (name, win, stages) in [("frontalface_default", (24, 24), 25), ("frontalface_alt2", (20, 20), 20),
                                    ("upperbody", (22, 18), 30), ("fullbody", (14, 28), 30)] {
            let c = cascade(name);
            assert_eq!((c.window(), c.stages()), (win, stages), "{name}");
        }
        let old = Cascade::load(Path::new(&format!("{DIR}/haarcascade_licence_plate_rus_16stages.xml")));
        assert!(matches!(old, Err(CascadeError::Format(m)) if m.contains("opencv-haar-classifier")));
    }

    #[test]
    fn bad_input_gives_errors() {
        let xml = std::fs::read_to_string(format!("{DIR}/haarcascade_frontalface_default.xml")).expect("read");
        assert!(matches!(Cascade::from_xml(&xml[..xml.len() / 2]), Err(CascadeError::Xml(_))));
        assert!(matches!(Cascade::from_xml("<opencv_storage><cascade>"), Err(CascadeError::Xml(_))));
        assert!(matches!(Cascade::from_xml("<opencv_storage/>"), Err(CascadeError::Format(_))));
        let broken = xml.replacen("0 -1 0 -3.1511999666690826e-02", "0 -1 99999 -3.1e-02", 1);
        assert!(matches!(Cascade::from_xml(&broken), Err(CascadeError::Format(m)) if m.contains("featureIdx")));
        let lbp = xml.replacen("<featureType>HAAR", "<featureType>LBP", 1);
        assert!(matches!(Cascade::from_xml(&lbp), Err(CascadeError::Format(m)) if m.contains("LBP")));
        assert!(matches!(Cascade::load(Path::new("/nonexistent.xml")), Err(CascadeError::Io { .. })));
    }

    #[test]
    fn tilted_integral_matches_definition() {
        let (w, h) = (7usize, 5usize);
        let g: Vec<u8> = (0..w * h).map(|i| (i * 37 % 251) as u8).collect();
        let ii = integrals(&g, w, h, true);
        for yy in 0..=h as i64 {
            for xx in 0..=w as i64 {
                let mut t = 0u32;
                for y in 0..yy { for x in 0..w as i64 { if (x - xx + 1).abs() < yy - y { t += g[y as usize * w + x as usize] as u32; } } }
                assert_eq!(ii.buf[(h + 1 + yy as usize) * (w + 1) + xx as usize], t, "tilted({xx},{yy})");
            }
        }
    }

    #[test]
    fn flat_noise_and_tiny_images_give_nothing() {
        let c = cascade("frontalface_default");
        let p = DetectParams::default();
        assert!(c.detect(&vec![128; 320 * 240], 320, 240, &p).is_empty());
        let mut s = 0x2545F4914F6CDD1Du64;
        let noise: Vec<u8> = (0..320 * 240).map(|_| { s ^= s << 13; s ^= s >> 7; s ^= s << 17; (s >> 56) as u8 }).collect();
        assert!(c.detect(&noise, 320, 240, &p).len() <= 1);
        assert!(c.detect(&[], 0, 0, &p).is_empty() && c.detect(&[7], 1, 1, &p).is_empty());
        assert!(c.detect(&noise, 321, 240, &p).is_empty() && c.detect(&noise, 320, 240, &DetectParams { scale_factor: 1.0, ..p }).is_empty());
    }

    /// Replaces each `block`² tile of every detection, grown by 20 %, with its mean.
    fn pixelate(g: &mut [u8], w: u32, h: u32, faces: &[Detection], block: u32) {
        for d in faces {
            let (x0, y0) = (d.x.saturating_sub(d.width / 10), d.y.saturating_sub(d.height / 10));
            let (x1, y1) = ((d.x + d.width * 11 / 10).min(w), (d.y + d.height * 11 / 10).min(h));
            for (by, bx) in (y0..y1).step_by(block as usize).flat_map(|by| (x0..x1).step_by(block as usize).map(move |bx| (by, bx))) {
                let idx: Vec<usize> = (by..(by + block).min(y1)).flat_map(|y| (bx..(bx + block).min(x1)).map(move |x| (y * w + x) as usize)).collect();
                let mean = (idx.iter().map(|&i| g[i] as usize).sum::<usize>() / idx.len()) as u8;
                idx.iter().for_each(|&i| g[i] = mean);
            }
        }
    }

    #[test]
    fn finds_faces_in_group_photo_and_not_after_pixelation() {
        let (g, w, h) = photo();
        let p = DetectParams::default();
        for name in ["frontalface_default", "frontalface_alt2"] {
            let c = cascade(name);
            let faces = c.detect(&g, w, h, &p);
            let plausible = faces.iter().filter(|d| (20..=120).contains(&d.width) && d.width == d.height).count();
            println!("{name}: {} detections, {plausible} sized 20..=120 px", faces.len());
            assert!(plausible >= 20 && plausible * 10 >= faces.len() * 9, "{name}: {faces:?}");
            for block in [8, 16] {
                let mut pg = g.clone();
                pixelate(&mut pg, w, h, &faces, block);
                let again = c.detect(&pg, w, h, &p);
                let refound = faces.iter().filter(|f| again.iter().any(|a| {
                    let (cx, cy) = (a.x + a.width / 2, a.y + a.height / 2);
                    cx >= f.x && cx < f.x + f.width && cy >= f.y && cy < f.y + f.height
                })).count();
                println!("{name}, {block}x{block} pixelation: {refound} of {} faces found again", faces.len());
                // 8x8 tiles leave ~7 tiles across a 60 px face, which Haar features still see as a face.
                assert!(if block == 8 { refound * 4 < faces.len() * 3 } else { refound <= 1 });
            }
        }
    }
}
