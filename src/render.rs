//! TODO(lead): render
