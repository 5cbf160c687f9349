using System.Reflection;
using Google.Protobuf.Reflection;

namespace Hull.Grpc.Server;

/// <summary>
/// Binds the methods of a generated service descriptor to an implementation object by name: for each
/// RPC the implementation may have a public method with the same name and the shape
/// <c>Task&lt;TResponse&gt; Name(TRequest, ServerCallContext)</c> (unary) or
/// <c>Task Name(TRequest, IServerStreamWriter&lt;TResponse&gt;, ServerCallContext)</c> (server streaming).
/// RPCs without one answer UNIMPLEMENTED naming the method.
/// </summary>
internal static class ServiceBinder
{
    public static IEnumerable<(string Path, ServerMethod Method)> Bind(ServiceDescriptor service, object implementation)
    {
        var type = implementation.GetType();
        foreach (var method in service.Methods)
        {
            string path = PathOf(method);
            var candidate = type.GetMethod(method.Name, BindingFlags.Public | BindingFlags.Instance);
            if (candidate is null)
            {
                yield return (path, new UnimplementedMethod(method, $"method {path.TrimStart('/')} is not implemented by Hull yet"));
                continue;
            }
            yield return (path, BindOne(method, implementation, candidate));
        }
    }

    public static string PathOf(MethodDescriptor method) => $"/{method.Service.FullName}/{method.Name}";

    private static ServerMethod BindOne(MethodDescriptor method, object implementation, MethodInfo candidate)
    {
        var request = method.InputType.ClrType;
        var response = method.OutputType.ClrType;
        if (method.IsClientStreaming)
            throw new InvalidOperationException($"{PathOf(method)}: client-streaming methods are not supported by Hull.Grpc");
        Type methodType, delegateType;
        if (method.IsServerStreaming)
        {
            delegateType = typeof(Func<,,,>).MakeGenericType(request, typeof(IServerStreamWriter<>).MakeGenericType(response),
                typeof(ServerCallContext), typeof(Task));
            methodType = typeof(ServerStreamingMethod<,>).MakeGenericType(request, response);
        }
        else
        {
            delegateType = typeof(Func<,,>).MakeGenericType(request, typeof(ServerCallContext), typeof(Task<>).MakeGenericType(response));
            methodType = typeof(UnaryMethod<,>).MakeGenericType(request, response);
        }
        Delegate handler;
        try
        {
            handler = Delegate.CreateDelegate(delegateType, implementation, candidate);
        }
        catch (ArgumentException e)
        {
            throw new InvalidOperationException(
                $"{implementation.GetType().Name}.{candidate.Name} does not match {PathOf(method)}: expected a {delegateType}", e);
        }
        return (ServerMethod)Activator.CreateInstance(methodType, method, handler)!;
    }
}
