//! torchvision's `resize(uint8 tensor, antialias=True, BILINEAR)`, bit-exact with torch's native
//! uint8 kernel.
