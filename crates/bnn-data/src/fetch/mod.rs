//! MNIST fetch (stub)
