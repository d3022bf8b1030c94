//! The anonymiser's core, free of I/O: find faces with SeetaFace's
//! funnel-structured cascade (the `rustface` crate; its trained model is
//! embedded at build time) and pixelate them beyond recognition.

use image::{GrayImage, RgbImage};
use rustface::{Detector, ImageData, Model};

use crate::messages::Rect;

/// SeetaFace's frontal-face model, from the `rustface` registry package.
pub static MODEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/seeta_fd_frontal_v1.0.bin"));

/// Smallest face looked for, pixels. The cascade's window is 40; smaller
/// faces are found on an upscaled pyramid level, at a cost.
pub const MIN_FACE: u32 = 20;

/// Searches of one frame at most ([`FaceFinder::anonymise`]).
pub const MAX_PASSES: usize = 3;

/// Parses the embedded model: once per process, then cloned per thread.
pub fn load_model() -> std::io::Result<Model> {
    rustface::read_model(MODEL)
}

/// One detector; not shareable between threads (it keeps scratch state),
/// so each connection gets its own from a clone of the model.
pub struct FaceFinder {
    detector: Box<dyn Detector>,
}

impl FaceFinder {
    /// A detector tuned for camera frames: faces from [`MIN_FACE`] pixels,
    /// a 4-pixel sliding step, a score threshold of 2 (SeetaFace's demo
    /// setting; lower finds more and errs more).
    pub fn new(model: Model) -> FaceFinder {
        let mut detector = rustface::create_detector_with_model(model);
        detector.set_min_face_size(MIN_FACE);
        detector.set_score_thresh(2.0);
        detector.set_pyramid_scale_factor(0.8);
        detector.set_slide_window_step(4, 4);
        FaceFinder { detector }
    }

    /// Finds every face in `img` and pixelates it ([`pixelate`]): what the
    /// anonymiser does to each frame. Returns the faces found.
    ///
    /// The cascade's non-maximum suppression can hide a face next to a
    /// stronger one; once that one is pixelated the hidden one shows. So
    /// the frame is searched again after each pixelation until a pass
    /// finds nothing ([`MAX_PASSES`] at most): a frame without faces costs
    /// one pass, a crowd usually two.
    pub fn anonymise(&mut self, img: &mut RgbImage) -> Vec<Rect> {
        let mut all = Vec::new();
        for _ in 0..MAX_PASSES {
            let faces = self.find(&image::imageops::grayscale(img));
            if faces.is_empty() {
                break;
            }
            pixelate(img, &faces);
            all.extend(faces);
        }
        all
    }

    /// The faces in `gray`.
    pub fn find(&mut self, gray: &GrayImage) -> Vec<Rect> {
        let (w, h) = gray.dimensions();
        // rustface panics on an empty image, and finds nothing below its window.
        if w < MIN_FACE || h < MIN_FACE {
            return Vec::new();
        }
        self.detector
            .detect(&ImageData::new(gray.as_raw(), w, h))
            .iter()
            .filter_map(|face| clip(face.bbox().x(), face.bbox().y(), face.bbox().width(), face.bbox().height(), w, h))
            .collect()
    }
}

/// A box clipped to the image, or nothing if it lies outside.
fn clip(x: i32, y: i32, w: u32, h: u32, width: u32, height: u32) -> Option<Rect> {
    let x0 = x.max(0) as u32;
    let y0 = y.max(0) as u32;
    let x1 = (i64::from(x) + i64::from(w)).clamp(0, i64::from(width)) as u32;
    let y1 = (i64::from(y) + i64::from(h)).clamp(0, i64::from(height)) as u32;
    (x1 > x0 && y1 > y0).then_some(Rect { x: x0, y: y0, w: x1 - x0, h: y1 - y0 })
}

/// Replaces every face (grown by a quarter on each side, so hair line,
/// chin and ears go too) with blocks of a third of the face's size, each
/// the mean of the pixels it covers: 3×3 blocks across a face leave
/// nothing a person or a face detector could recognise (at quarters,
/// OpenCV's Haar cascade still found one face in the test photograph).
pub fn pixelate(img: &mut RgbImage, faces: &[Rect]) {
    let (width, height) = img.dimensions();
    for face in faces {
        let grow_w = face.w / 4;
        let grow_h = face.h / 4;
        let Some(area) = clip(
            face.x as i32 - grow_w as i32,
            face.y as i32 - grow_h as i32,
            face.w + 2 * grow_w,
            face.h + 2 * grow_h,
            width,
            height,
        ) else {
            continue;
        };
        let block = (face.w.max(face.h) / 3).max(4);
        let mut by = area.y;
        while by < area.y + area.h {
            let bh = block.min(area.y + area.h - by);
            let mut bx = area.x;
            while bx < area.x + area.w {
                let bw = block.min(area.x + area.w - bx);
                fill_mean(img, bx, by, bw, bh);
                bx += bw;
            }
            by += bh;
        }
    }
}

fn fill_mean(img: &mut RgbImage, x: u32, y: u32, w: u32, h: u32) {
    let mut sum = [0u64; 3];
    for yy in y..y + h {
        for xx in x..x + w {
            let p = img.get_pixel(xx, yy).0;
            for c in 0..3 {
                sum[c] += u64::from(p[c]);
            }
        }
    }
    let n = u64::from(w) * u64::from(h);
    let mean = image::Rgb(sum.map(|s| (s / n.max(1)) as u8));
    for yy in y..y + h {
        for xx in x..x + w {
            img.put_pixel(xx, yy, mean);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_keeps_boxes_inside() {
        assert_eq!(clip(-5, -5, 20, 20, 100, 100), Some(Rect { x: 0, y: 0, w: 15, h: 15 }));
        assert_eq!(clip(90, 95, 20, 20, 100, 100), Some(Rect { x: 90, y: 95, w: 10, h: 5 }));
        assert_eq!(clip(200, 0, 20, 20, 100, 100), None);
    }

    #[test]
    fn pixelating_makes_blocks_of_one_colour() {
        let mut img = RgbImage::from_fn(64, 64, |x, y| image::Rgb([(x * 4) as u8, (y * 4) as u8, 0]));
        pixelate(&mut img, &[Rect { x: 16, y: 16, w: 32, h: 32 }]);
        // 32 px face → grown to 48 px from (8, 8), 10 px blocks: one block is one colour.
        let first = *img.get_pixel(8, 8);
        assert!((8..18).all(|x| (8..18).all(|y| *img.get_pixel(x, y) == first)));
        assert_ne!(*img.get_pixel(8, 8), *img.get_pixel(18, 8));
        // Outside the grown box nothing changed.
        assert_eq!(*img.get_pixel(60, 60), image::Rgb([240, 240, 0]));
    }

    #[test]
    fn tiny_and_empty_frames_have_no_faces() {
        let model = load_model().expect("model");
        let mut finder = FaceFinder::new(model);
        assert!(finder.find(&GrayImage::new(0, 0)).is_empty());
        assert!(finder.find(&GrayImage::new(10, 300)).is_empty());
        assert!(finder.find(&GrayImage::from_pixel(200, 200, image::Luma([128]))).is_empty());
    }
}
