//! The camera's scene: a real photograph shipped in a registry package
//! (the 1927 Solvay conference, from the `rustface` crate; embedded at
//! build time), panned and cropped into a moving stream, as a camera on a
//! slowly turning mount would see it.

use image::{ImageFormat, RgbImage};

/// The photograph, PNG.
pub static PHOTO: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/solvay-1927.png"));

/// Where the people are: the top 60 % of the photograph (below: the
/// pavement and the caption).
const SCENE_HEIGHT_SHARE: f64 = 0.6;

/// A moving crop over the photograph.
pub struct Pan {
    photo: RgbImage,
    width: u32,
    height: u32,
    /// Frames for one sweep from left to right.
    sweep: u64,
}

impl Pan {
    /// A `width`×`height` view (clamped to the photograph) that sweeps
    /// across it and back, one way in `sweep` frames.
    pub fn new(width: u32, height: u32, sweep: u64) -> Result<Pan, image::ImageError> {
        let photo = image::load_from_memory_with_format(PHOTO, ImageFormat::Png)?.to_rgb8();
        let scene_h = (f64::from(photo.height()) * SCENE_HEIGHT_SHARE) as u32;
        Ok(Pan { width: width.clamp(1, photo.width()), height: height.clamp(1, scene_h.max(1)), photo, sweep: sweep.max(1) })
    }

    /// The size of every frame.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Frame `n`: horizontally a triangle wave over the free width,
    /// vertically a slow sway over the free scene height.
    pub fn frame(&self, n: u64) -> RgbImage {
        let scene_h = (f64::from(self.photo.height()) * SCENE_HEIGHT_SHARE) as u32;
        let free_x = self.photo.width() - self.width;
        let free_y = scene_h.saturating_sub(self.height);
        let phase = n % (2 * self.sweep);
        let along = if phase < self.sweep { phase } else { 2 * self.sweep - phase } as f64 / self.sweep as f64;
        let sway = ((n as f64) / (3.0 * self.sweep as f64) * std::f64::consts::TAU).sin() * 0.5 + 0.5;
        let x = (along * f64::from(free_x)) as u32;
        let y = (sway * f64::from(free_y)) as u32;
        image::imageops::crop_imm(&self.photo, x, y, self.width, self.height).to_image()
    }

    /// The whole photograph (for tests).
    pub fn photo(&self) -> &RgbImage {
        &self.photo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_move_and_keep_their_size() {
        let pan = Pan::new(480, 360, 50).expect("photo");
        let a = pan.frame(0);
        let b = pan.frame(10);
        assert_eq!(a.dimensions(), (480, 360));
        assert_eq!(b.dimensions(), (480, 360));
        assert_ne!(a.as_raw(), b.as_raw());
        // Back where it started after a sweep there and back (and a sway period).
        assert_eq!(pan.frame(0).as_raw(), pan.frame(300).as_raw());
    }

    #[test]
    fn a_view_larger_than_the_photo_is_clamped() {
        let pan = Pan::new(100_000, 100_000, 1).expect("photo");
        let (w, h) = pan.size();
        assert!(w <= pan.photo().width() && h <= pan.photo().height());
        assert_eq!(pan.frame(3).dimensions(), (w, h));
    }
}
