//! TODO(lead): report
