#!/usr/bin/env bash
# Make the test PKI in DIR (idempotent): a throwaway CA, a TLS server certificate for
# localhost/127.0.0.1/::1 signed by it, and an RSA key that the fake identity provider signs
# JWTs with (Dovecot is given the public half).
#   DIR/ca.pem  DIR/ca-key.pem          test CA (trust it with NODE_EXTRA_CA_CERTS=DIR/ca.pem)
#   DIR/server.pem DIR/server-key.pem   TLS for the identity provider, Postfix and Dovecot
#   DIR/jwt-key.pem DIR/jwt-pub.pem     RS256 signing key; DIR/jwt-kid holds its key ID
set -euo pipefail
dir=${1:?usage: pki.sh DIR}
mkdir -p "$dir"
cd "$dir"
if [[ -s ca.pem && -s server.pem && -s jwt-key.pem && -s jwt-kid ]]; then exit 0; fi
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 30 \
  -subj "/CN=oauthmail test CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server-key.pem -out server.csr -subj "/CN=localhost" 2>/dev/null
cat > server.ext <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
EXT
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out server.pem -days 30 \
  -extfile server.ext 2>/dev/null
rm -f server.csr server.ext ca.srl
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out jwt-key.pem 2>/dev/null
openssl pkey -in jwt-key.pem -pubout -out jwt-pub.pem
# key ID: first 16 hex chars of the SHA-256 of the public key (DER)
openssl pkey -pubin -in jwt-pub.pem -outform DER | openssl dgst -sha256 -r | cut -c1-16 > jwt-kid
chmod 0644 ca.pem server.pem jwt-pub.pem jwt-kid
chmod 0600 ca-key.pem server-key.pem jwt-key.pem
