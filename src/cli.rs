//! TODO(lead): cli
