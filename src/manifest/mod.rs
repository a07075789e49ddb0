//! Manifest: see manifest/ (helper).
