//! Config: see config/ (helper).
