//! Frames on the wire are JPEGs. A comment segment says where a frame has
//! been (`grove-camera-raw …` from a camera, `grove-anonymised …` from an
//! anonymiser), so that a capture can tell a raw frame from an anonymised
//! one without decoding it.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::{ImageFormat, ImageReader, Limits, RgbImage};

/// Starts the comment of every frame a camera sends.
pub const RAW_MARK: &str = "grove-camera-raw";
/// Starts the comment of every frame an anonymiser sends on.
pub const ANONYMISED_MARK: &str = "grove-anonymised";
/// Largest frame side decoded: 8K. A bigger one is refused, not allocated.
pub const MAX_SIDE: u32 = 8192;

/// Why a frame could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Not a JPEG this decoder reads, or over the limits.
    #[error("not a usable JPEG frame: {0}")]
    Decode(#[from] image::ImageError),
}

/// `img` as a baseline JPEG of `quality` (1–100), with `comment` in a COM
/// segment right after SOI.
pub fn encode_jpeg(img: &RgbImage, quality: u8, comment: &str) -> Result<Vec<u8>, FrameError> {
    let mut jpeg = Vec::with_capacity(64 * 1024);
    JpegEncoder::new_with_quality(&mut jpeg, quality).encode_image(img)?;
    Ok(insert_comment(jpeg, comment))
}

/// Decodes a JPEG frame, refusing images over [`MAX_SIDE`] per side or
/// 256 MiB of pixels before they are allocated.
pub fn decode_jpeg(jpeg: &[u8]) -> Result<RgbImage, FrameError> {
    let mut reader = ImageReader::with_format(Cursor::new(jpeg), ImageFormat::Jpeg);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    Ok(reader.decode()?.to_rgb8())
}

/// The text of the first COM segment before the image data, if any.
pub fn comment(jpeg: &[u8]) -> Option<String> {
    let mut at = 2;
    if jpeg.get(..2) != Some(&[0xFF, 0xD8]) {
        return None;
    }
    while let (Some(&0xFF), Some(&marker)) = (jpeg.get(at), jpeg.get(at + 1)) {
        let len = usize::from(u16::from_be_bytes([*jpeg.get(at + 2)?, *jpeg.get(at + 3)?]));
        if marker == 0xFE {
            let text = jpeg.get(at + 4..at + 2 + len)?;
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        if marker == 0xDA || len < 2 {
            return None;
        }
        at += 2 + len;
    }
    None
}

fn insert_comment(jpeg: Vec<u8>, comment: &str) -> Vec<u8> {
    let text = &comment.as_bytes()[..comment.len().min(60_000)];
    let mut out = Vec::with_capacity(jpeg.len() + text.len() + 4);
    out.extend_from_slice(&jpeg[..2.min(jpeg.len())]);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&((text.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(text);
    out.extend_from_slice(jpeg.get(2..).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_with_its_comment() {
        let img = RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 3, y as u8 * 5, 128]));
        let jpeg = encode_jpeg(&img, 85, "grove-camera-raw munich 7").expect("encode");
        assert_eq!(comment(&jpeg).as_deref(), Some("grove-camera-raw munich 7"));
        let back = decode_jpeg(&jpeg).expect("decode");
        assert_eq!(back.dimensions(), (64, 48));
    }

    #[test]
    fn the_markers_are_those_the_capture_test_looks_for() {
        // netns-tests/tests/netns/pipeline.rs repeats them (it cannot depend on this crate).
        assert_eq!((RAW_MARK, ANONYMISED_MARK), ("grove-camera-raw", "grove-anonymised"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_jpeg(b"").is_err());
        assert!(decode_jpeg(b"\xFF\xD8\xFF\xFE\x00\x05abc").is_err());
        assert_eq!(comment(b"\xFF\xD8\xFF\xFE\xFF\xFF"), None);
        assert_eq!(comment(b"nope"), None);
    }
}
