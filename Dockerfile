# A small image for running trawl on Kubernetes and the like:
#   docker build -t trawl .
# The binary is static (no cgo), the runtime image has CA certificates and
# nothing else, and trawl runs as an unprivileged user.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/trawl .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/trawl /usr/local/bin/trawl
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/trawl"]
