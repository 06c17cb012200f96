//! `amqps://` against a RabbitMQ node the test starts itself, with a TLS
//! listener only and a certificate for `localhost` from the test's CA.

use lapin::options::{BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use test_support::{PrivateRabbitMq, TestCa};

#[tokio::test]
async fn amqps_with_the_ca_file_works_and_a_wrong_ca_or_name_is_refused() {
    let ca = TestCa::new("docflow test CA");
    let node = PrivateRabbitMq::start(&ca.server_cert(&["localhost"])).await;
    let cacertfile = format!("cacertfile={}", ca.ca_file().display());

    // The CA named in the URL (what AMQP_CA_FILE adds): a full round trip.
    let conn = broker::connect(&node.url("localhost", &cacertfile), "tls test")
        .await
        .unwrap_or_else(|e| panic!("amqps connect: {e}; node log:\n{}", node.log_text()));
    let channel = conn.create_channel().await.unwrap();
    let queue = "tls-roundtrip";
    channel.queue_declare(queue.into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    channel
        .basic_publish("".into(), queue.into(), BasicPublishOptions::default(), b"over tls", Default::default())
        .await
        .unwrap()
        .await
        .unwrap();
    let got = test_support::eventually(std::time::Duration::from_secs(10), "the message back", || async {
        channel.basic_get(queue.into(), Default::default()).await.unwrap()
    })
    .await;
    assert_eq!(got.delivery.data, b"over tls");
    channel.queue_delete(queue.into(), QueueDeleteOptions::default()).await.unwrap();
    conn.close(200, "done".into()).await.unwrap();

    // The platform's roots alone do not know the test CA.
    let error = broker::connect(&node.url("localhost", ""), "tls test").await.unwrap_err().to_string();
    assert!(error.contains("UnknownIssuer"), "{error}");

    // Another CA's file does not help either.
    let other = TestCa::new("another CA");
    let url = node.url("localhost", &format!("cacertfile={}", other.ca_file().display()));
    let error = broker::connect(&url, "tls test").await.unwrap_err().to_string();
    assert!(error.contains("UnknownIssuer"), "{error}");

    // The right CA but a name the certificate does not carry.
    let error = broker::connect(&node.url("127.0.0.1", &cacertfile), "tls test").await.unwrap_err().to_string();
    assert!(error.contains("not valid for name"), "{error}");
}
