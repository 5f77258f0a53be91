//! Pillow's `Image.resize(size, resample=BILINEAR)` on RGB uint8 images, bit-exact.
