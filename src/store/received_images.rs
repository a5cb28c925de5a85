//! Received images (transports spec §5.6): an image larger than 2000 px on its longest side is
//! scaled down (Lanczos), and every still image is stored as WebP quality 85 (`<stem>.webp`,
//! the original removed). GIFs and anything that fails stay as they are.

use camino::{Utf8Path, Utf8PathBuf};
use image::GenericImageView;

/// Longest side kept.
pub const MAX_SIDE: u32 = 2000;
/// WebP quality.
pub const QUALITY: f32 = 85.0;

/// Why an image stayed as it was.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Not a still image this build converts.
    #[error("not a still image")]
    NotStill,
    /// Decoding failed.
    #[error("could not decode: {0}")]
    Decode(String),
    /// Writing failed.
    #[error("could not write: {0}")]
    Write(String),
}

fn is_still_image(path: &Utf8Path) -> bool {
    matches!(path.extension().map(str::to_lowercase).as_deref(), Some("jpg" | "jpeg" | "png" | "bmp" | "webp"))
}

/// Converts the image at `path` (see the module); returns the new path. The original is kept
/// on any failure.
pub fn process(path: &Utf8Path) -> Result<Utf8PathBuf, ImageError> {
    if !is_still_image(path) {
        return Err(ImageError::NotStill);
    }
    let image = image::open(path).map_err(|e| ImageError::Decode(e.to_string()))?;
    let (width, height) = image.dimensions();
    let is_webp = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("webp"));
    if is_webp && width.max(height) <= MAX_SIDE {
        return Ok(path.to_owned());
    }
    let image = if width.max(height) > MAX_SIDE {
        image.resize(MAX_SIDE, MAX_SIDE, image::imageops::FilterType::Lanczos3)
    } else {
        image
    };
    let (width, height) = image.dimensions();
    let encoded = if image.color().has_alpha() {
        webp::Encoder::from_rgba(image.to_rgba8().as_raw(), width, height).encode(QUALITY).to_vec()
    } else {
        webp::Encoder::from_rgb(image.to_rgb8().as_raw(), width, height).encode(QUALITY).to_vec()
    };
    let target = path.with_extension("webp");
    std::fs::write(&target, &encoded).map_err(|e| ImageError::Write(e.to_string()))?;
    if target != path {
        let _ = std::fs::remove_file(path);
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_png_becomes_a_2000_px_webp_and_a_gif_stays() {
        let dir = tempfile::tempdir().unwrap();
        let base = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        let png = base.join("wide.png");
        image::RgbImage::from_pixel(4000, 1000, image::Rgb([200, 30, 30])).save(&png).unwrap();
        let converted = process(&png).unwrap();
        assert_eq!(converted, base.join("wide.webp"));
        assert!(!png.exists(), "the original is removed");
        assert_eq!(image::open(&converted).unwrap().dimensions(), (2000, 500));
        let gif = base.join("anim.gif");
        std::fs::write(&gif, b"GIF89a").unwrap();
        assert!(matches!(process(&gif), Err(ImageError::NotStill)));
        assert!(gif.exists());
        let broken = base.join("broken.jpg");
        std::fs::write(&broken, b"not a jpeg").unwrap();
        assert!(matches!(process(&broken), Err(ImageError::Decode(_))));
        assert!(broken.exists(), "kept on failure");
    }
}
