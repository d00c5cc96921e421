//! (placeholder: not implemented yet)
