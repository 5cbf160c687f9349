# The DaemonSet installer's image (deploy/kubernetes/hull.yaml, charts/hull): hulld and hullctl (self-contained,
# ReadyToRun) in /opt/hull with the systemd unit, the install script and the version. hack/build-image.sh builds the
# same image without a Docker engine (debootstrap + umoci + skopeo); keep the two in step.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
# hulld's build compiles its C helpers (cmd/hull-infra, cmd/hull-run-detached; static) with the system compiler.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN dotnet publish cmd/hulld -c Release -r linux-x64 --self-contained -p:PublishReadyToRun=true -o /out/hull \
 && dotnet publish cmd/hullctl -c Release -r linux-x64 --self-contained -p:PublishReadyToRun=true -o /out/hull \
 && sed -n 's|.*<Version>\(.*\)</Version>.*|\1|p' Directory.Build.props >/out/hull/VERSION

FROM debian:bookworm-slim
# .NET's TLS (the reporter talks to the API server) needs libssl; util-linux (nsenter) is in the base.
RUN apt-get update && apt-get install -y --no-install-recommends libssl3 ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/hull /opt/hull
COPY deploy/systemd/hulld.service deploy/config.toml /opt/hull/deploy/
COPY deploy/kubernetes/install-on-node.sh /opt/hull/install-on-node.sh
ENV DOTNET_EnableDiagnostics=0
ENTRYPOINT ["/opt/hull/install-on-node.sh"]
