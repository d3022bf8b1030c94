//! The cloud stage's core: people (upper bodies) and any face left
//! recognisable, found with OpenCV's trained Haar cascades (Debian's
//! `opencv-data`), evaluated by [`crate::haar`].

use std::path::{Path, PathBuf};

use image::GrayImage;

use crate::haar::{Cascade, CascadeError, DetectParams};
use crate::messages::Rect;

/// Where Debian and Ubuntu's `opencv-data` puts the cascades.
pub const DEFAULT_CASCADES: &str = "/usr/share/opencv4/haarcascades";
/// The person cascade.
pub const PERSON_FILE: &str = "haarcascade_upperbody.xml";
/// The face cascade (a different detector from the anonymiser's: what
/// it still finds, the anonymiser missed).
pub const FACE_FILE: &str = "haarcascade_frontalface_alt2.xml";

/// Why the detector could not start.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A cascade file is missing.
    #[error(
        "{}: not found. The detector's models are OpenCV's trained Haar cascades from the \
         `opencv-data` package: install it with `apt-get install opencv-data`, or point \
         --cascades at a directory holding {PERSON_FILE} and {FACE_FILE}",
        .0.display()
    )]
    Missing(PathBuf),
    /// A cascade file is not one.
    #[error(transparent)]
    Cascade(#[from] CascadeError),
}

/// Both cascades, loaded once and shared by every connection.
pub struct Detector {
    persons: Cascade,
    faces: Cascade,
}

impl Detector {
    /// Loads the cascades from `dir`.
    pub fn load(dir: &Path) -> Result<Detector, ModelError> {
        let load = |file: &str| {
            let path = dir.join(file);
            if !path.is_file() {
                return Err(ModelError::Missing(path));
            }
            Ok(Cascade::load(&path)?)
        };
        Ok(Detector { persons: load(PERSON_FILE)?, faces: load(FACE_FILE)? })
    }

    /// Persons and faces in `gray`.
    pub fn detect(&self, gray: &GrayImage) -> (Vec<Rect>, Vec<Rect>) {
        let (w, h) = gray.dimensions();
        // OpenCV's upper-body cascade is a weak person detector: at its
        // usual 3 neighbours it finds nobody in the camera's crops, at 2
        // about one person in four frames (and costs ~45 ms a frame here).
        let persons = DetectParams { scale_factor: 1.1, min_neighbors: 2, min_size: 40, max_size: 0 };
        let faces = DetectParams { scale_factor: 1.15, min_neighbors: 3, min_size: 20, max_size: 0 };
        let to_rects = |found: Vec<crate::haar::Detection>| found.into_iter().map(|d| Rect { x: d.x, y: d.y, w: d.width, h: d.height }).collect();
        (to_rects(self.persons.detect(gray.as_raw(), w, h, &persons)), to_rects(self.faces.detect(gray.as_raw(), w, h, &faces)))
    }
}
