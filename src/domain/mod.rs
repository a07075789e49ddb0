//! Domain types shared by every module. Pure: no I/O, no clock, no git2.

mod commit;
pub mod health;
pub mod image;
pub mod ledger;
pub mod trailers;

pub use commit::{AppName, CommitSha, ParseShaError};
pub use image::{Digest, ImageRef, ImageRefError};
