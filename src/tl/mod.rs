//! The TL wire codec (in progress).
