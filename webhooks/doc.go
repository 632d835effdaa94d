// Package webhooks delivers post-call and abandoned-call notifications:
// JSON POSTs (HMAC-signed when a secret is set) and emails, queued and
// retried with back-off so that no call ever waits for another system.
package webhooks
