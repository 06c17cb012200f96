//! The broker layer against the real RabbitMQ on 127.0.0.1:5672, one queue
//! namespace per test.

mod tls;
mod topology;
