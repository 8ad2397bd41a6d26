/**
 * The certificate of the embedded demo server that `postie send` and `postie check` start when
 * no `--server` is given. It is published on purpose and protects nothing: the client trusts
 * its CA for the one connection to that server on this machine, and nowhere else.
 *
 * Made with openssl (EC P-256, 30 years): a CA certificate ("postie demo CA", whose private key
 * was thrown away, so it signed this one certificate only) and a leaf certificate for
 * `localhost`, `127.0.0.1` and `::1` (`basicConstraints=CA:FALSE`, `extendedKeyUsage=serverAuth`;
 * Deno's TLS refuses a CA certificate as a server's own).
 *
 * @module
 */

/** The demo CA certificate (PEM), to trust with `tlsOptions.caCerts`. */
export const DEMO_CA: string = `-----BEGIN CERTIFICATE-----
MIICAzCCAamgAwIBAgIUPaj8mWWwtEWtfU3USwGhDtd+wwcwCgYIKoZIzj0EAwIw
TjEzMDEGA1UECgwqcG9zdGllIChwdWJsaXNoZWQgZGVtbyBrZXksIHRydXN0IG5v
d2hlcmUpMRcwFQYDVQQDDA5wb3N0aWUgZGVtbyBDQTAgFw0yNjEyMDIxMjM5MzJa
GA8yMDU2MTEyNDEyMzkzMlowTjEzMDEGA1UECgwqcG9zdGllIChwdWJsaXNoZWQg
ZGVtbyBrZXksIHRydXN0IG5vd2hlcmUpMRcwFQYDVQQDDA5wb3N0aWUgZGVtbyBD
QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGsSiby2Bmjc3vRSAqGz5gLGigyi
4ifHTL4EKVBu/AngFv7NjwiWJLxyZ2LG2uViYifwLYoqvjYHNYwhbbzKNwujYzBh
MB0GA1UdDgQWBBQ+zWPi8typ6FlXjyuiBgttc37ksTAfBgNVHSMEGDAWgBQ+zWPi
8typ6FlXjyuiBgttc37ksTAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIB
BjAKBggqhkjOPQQDAgNIADBFAiB6jYCfRbdrQDCx3dZxSFBBwAX2QgBca3mrNm/1
anxOkwIhALneicnv0b9YRFpO2InQFnzOtkxUYuTRIjPrdTyN8RQ5
-----END CERTIFICATE-----
`;

/** The demo server's certificate (PEM). */
export const DEMO_CERT: string = `-----BEGIN CERTIFICATE-----
MIICCDCCAa6gAwIBAgIUJzFQPClPChOcRfUD5dox1LPYBIUwCgYIKoZIzj0EAwIw
TjEzMDEGA1UECgwqcG9zdGllIChwdWJsaXNoZWQgZGVtbyBrZXksIHRydXN0IG5v
d2hlcmUpMRcwFQYDVQQDDA5wb3N0aWUgZGVtbyBDQTAgFw0yNjEyMDIxMjM5MzJa
GA8yMDU2MTEyNDEyMzkzMlowFDESMBAGA1UEAwwJbG9jYWxob3N0MFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEo8jXshiMDz5TmB8QYaBZ5N4YtSuF9N4+4d3Rx0Er
V81lBP3LchVCHywoPaj76UjVxKkIAIzyudRLlCI0MQUHpaOBoTCBnjAJBgNVHRME
AjAAMA4GA1UdDwEB/wQEAwIFoDATBgNVHSUEDDAKBggrBgEFBQcDATAsBgNVHREE
JTAjgglsb2NhbGhvc3SHBH8AAAGHEAAAAAAAAAAAAAAAAAAAAAEwHQYDVR0OBBYE
FMhLwFrnLOu3ydp2Qd10AVyE+nCcMB8GA1UdIwQYMBaAFD7NY+Ly3KnoWVePK6IG
C21zfuSxMAoGCCqGSM49BAMCA0gAMEUCIG748KlZ7bk4sey4hk0Fmg7EF22av7Ds
6bNco5qVTH3cAiEAgS48yowc8D15L4+ddxfOHVu+lY0YoGWfeuCH/j2DNfo=
-----END CERTIFICATE-----
`;

/** The demo server's private key (PEM), published with the package. */
export const DEMO_KEY: string = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgIiLT7Jnk9NMkr2Z5
Cqygjg4fJV6VCElsorf+Tyb+p8yhRANCAASjyNeyGIwPPlOYHxBhoFnk3hi1K4X0
3j7h3dHHQStXzWUE/ctyFUIfLCg9qPvpSNXEqQgAjPK51EuUIjQxBQel
-----END PRIVATE KEY-----
`;
