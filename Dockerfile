# Image used by the DaemonSet installer: it carries hulld/hullctl (framework-dependent, ReadyToRun)
# and an install script that copies them onto the node and enables the systemd unit.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish cmd/hulld -c Release -r linux-x64 --self-contained -p:PublishReadyToRun=true -o /out/hull \
 && dotnet publish cmd/hullctl -c Release -r linux-x64 --self-contained -p:PublishReadyToRun=true -o /out/hull

FROM debian:bookworm-slim
COPY --from=build /out/hull /opt/hull
COPY deploy/systemd/hulld.service deploy/config.toml /opt/hull/deploy/
COPY deploy/kubernetes/install-on-node.sh /opt/hull/install-on-node.sh
ENTRYPOINT ["/opt/hull/install-on-node.sh"]
