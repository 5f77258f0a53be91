//! Decode: image file bytes → RGB pixels, byte-for-byte what Pillow's `Image.open(p).convert("RGB")` gives.
