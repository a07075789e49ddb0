//! Git adapter.
