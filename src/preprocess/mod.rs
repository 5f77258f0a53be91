//! Pre-processing kernels: pure functions from decoded RGB to the pixels and tensors a model takes.
//! Each kernel mirrors one original library's arithmetic exactly and says which.
//!
//! Which family uses which kernel is decided in `detect::<family>`; nothing here knows about models.

pub mod clip;
pub mod detr;
pub mod letterbox;
pub mod opencv;
pub mod pil;
pub mod tensor;
pub mod torchvision_resize;

pub use tensor::Chw;
